//! The several-instance backend (DESIGN.md, "State"): every instance behind
//! one load balancer shares one Redis and sees the others' logins, lockouts
//! and revocations.
//!
//! - **Its own runtime.** Pingora runs several tokio runtimes (and short-lived
//!   ones); a Redis connection is tied to the runtime that made it. So the
//!   connections and the change-feed task live on one dedicated runtime
//!   ("portcullis-redis") and every call runs there, whatever runtime calls.
//! - **Fails fast, heals itself.** Every call is bounded ([`CALL_TIMEOUT`]);
//!   with Redis down it returns [`StoreError::Unavailable`] at once and the
//!   connection manager reconnects when Redis is back. `connect` succeeds
//!   while Redis is down.
//! - **Atomic read-modify-write.** A user's record is read, changed here (the
//!   same rules as the embedded backend), and written by one Lua script that
//!   first checks the record is still what was read, updates the indexes and
//!   publishes the change; when another writer came first, it starts over.
//!   Of two racing uses of one code, only the first write can succeed.
//! - **No plain names in key names.** User names (and the caller's challenge
//!   and counter keys, which hold IP addresses) appear in key names only as an
//!   HMAC under `name_key`; plain names live inside values, for export and
//!   for rebuilding the revocation snapshot.
//! - **Change feed.** A pub/sub connection forwards `{prefix}changes` to the
//!   subscribers; after it was lost it announces [`Change::Resync`], because
//!   whatever was published meanwhile is gone.
//!
//! - **Cluster-ready key names.** Every key a script or transaction touches
//!   together shares one hash tag, so it runs on one node of a Redis Cluster:
//!   a user's record and index entries (`users.rs`, 16 buckets), the
//!   device registry, the entrance passes. The change feed is a classic
//!   `PUBLISH`, which a cluster delivers on every node (see `target.rs`).
//! - **Durable writes** (`durable_replicas`): after a write that must
//!   survive a failover, `WAIT` for that many replicas, or report failure.
//!
//! Key layout (`{p}` is the key prefix, `{h}` an HMAC-SHA256 in hex, `b` its
//! first digit): `{p}{ub}:users`, `{p}{ub}:not_before`, `{p}{ub}:locks`
//! hashes keyed by `{h}` (see `users.rs`); `{p}revoked` sorted set, member
//! session id, score `until`; `{p}ch:{h}` challenge with a TTL; `{p}n:{h}`
//! counter with a TTL; `{p}{device_certs}` hash serial → JSON device
//! certificate, with `{p}{device_certs}:version` (see `devices.rs`);
//! `{p}{passes}` hash entrance pass id → JSON record, with
//! `{p}{passes}:seen` hash id → latest use (see `passes.rs`);
//! `{p}setting:{name}`; channel `{p}changes`.
//! Needs Redis 6.2 or later (RESP3, GETDEL, ZADD GT).

use super::{
    quota, CertUpdate, Change, DeviceCert, Exported, FailureOutcome, Invitation, InvitationTry, Lock, PassRecord,
    QuotaError, Reservation, Revocations, Store, StoreError, StoreResult, TotpRecord, UserRecord,
};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use redis::{cmd, Cmd, Script};
use serde::Serialize;
use sha2::Sha256;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::runtime::Handle;
use tokio::sync::{broadcast, oneshot};
use tokio::time::timeout;

mod access;
mod conn;
mod devices;
mod feed;
mod passes;
pub mod target;
mod users;
pub use access::{check_access, AccessError, RedisTls};
use conn::Conn;
use feed::Feed;
use target::Target;

pub const DEFAULT_KEY_PREFIX: &str = "portcullis:";

/// The most one store call may take, Redis up or down.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Export and import walk every record: an administrator's command, not a login.
const BULK_TIMEOUT: Duration = Duration::from_secs(120);
/// One connection attempt or one command.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the change feed checks its connection, so a silent loss is noticed.
const FEED_PING_EVERY: Duration = Duration::from_secs(1);
const FEED_RETRY_DELAY: Duration = Duration::from_millis(200);
/// How long `connect` waits for the change feed's first subscription.
const FEED_FIRST_WAIT: Duration = Duration::from_secs(2);
/// Rounds of optimistic read-modify-write before giving up (each round one writer wins).
const WRITE_ROUNDS: usize = 64;
/// How long a durable write waits for its replicas (`WAIT`).
const DURABLE_WAIT: Duration = Duration::from_secs(1);
const CHANGE_CAPACITY: usize = 1024;

/// Where and how to reach Redis.
#[derive(Clone)]
pub struct RedisOptions {
    /// `redis://host:port[/db]`, `rediss://…` (TLS: system roots, or `tls.ca_file`)
    /// `redis+sentinel://host:port,…/service` or `redis+cluster://host:port,…` (see `target.rs`).
    pub url: String,
    /// An ACL user; overrides a user name in the URL.
    pub username: Option<String>,
    /// Overrides a password in the URL (read from a file by the caller).
    pub password: Option<String>,
    /// Overrides a database number in the URL.
    pub db: Option<i64>,
    pub key_prefix: String,
    /// Key of the HMAC that names keys holding user-identifying data.
    pub name_key: [u8; 32],
    pub tls: RedisTls,
    /// Durable writes wait until this many replicas have them (0: no wait).
    pub durable_replicas: u32,
}

impl RedisOptions {
    pub fn new(url: impl Into<String>, name_key: [u8; 32]) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            username: None,
            password: None,
            db: None,
            key_prefix: DEFAULT_KEY_PREFIX.into(),
            name_key,
            tls: RedisTls::default(),
            durable_replicas: 0,
        }
    }
}

impl std::fmt::Debug for RedisOptions {
    // The URL and password may hold secrets; the name key is one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("username", &self.username)
            .field("db", &self.db)
            .field("tls", &self.tls)
            .field("key_prefix", &self.key_prefix)
            .field("durable_replicas", &self.durable_replicas)
            .finish_non_exhaustive()
    }
}

pub struct RedisStore {
    shared: Arc<Shared>,
    runtime: Handle,
    changes: broadcast::Sender<Change>,
    /// Dropping it ends the runtime thread (and with it the connections).
    _stop: oneshot::Sender<()>,
}

/// What every call needs, on the Redis runtime.
struct Shared {
    conn: Conn,
    keys: Keys,
    durable_replicas: u32,
    write_user: Script,
    count: Script,
    revoke_session: Script,
    put_setting: Script,
    write_device_cert: Script,
    touch_passes: Script,
    replace_pass: Script,
}

impl RedisStore {
    /// Sets up the runtime, the connection manager and the change feed. Does
    /// not need Redis to be up: calls return `Unavailable` until it is.
    pub fn connect(opts: RedisOptions) -> Result<RedisStore, StoreError> {
        let target = Arc::new(Target::new(&opts)?);
        let (runtime, stop) = start_runtime()?;
        let keys = Keys::new(&opts.key_prefix, &opts.name_key);
        let (changes, _) = broadcast::channel(CHANGE_CAPACITY);
        let handed_out = Arc::new(AtomicBool::new(false));
        let (first_try, first_tried) = std::sync::mpsc::sync_channel(1);
        let conn = {
            let _in_runtime = runtime.enter();
            let conn = Conn::new(Arc::clone(&target))?;
            let feed =
                Feed { target, channel: keys.changes(), changes: changes.clone(), handed_out: handed_out.clone() };
            runtime.spawn(feed.run(first_try));
            conn
        };
        // Changes made right after `connect` must reach this instance's
        // subscribers, so wait (bounded) until the feed listens.
        let _ = first_tried.recv_timeout(FEED_FIRST_WAIT);
        handed_out.store(true, Ordering::SeqCst);
        let shared = Shared {
            conn,
            keys,
            durable_replicas: opts.durable_replicas,
            write_user: Script::new(users::WRITE_USER),
            count: Script::new(COUNT),
            revoke_session: Script::new(REVOKE_SESSION),
            put_setting: Script::new(PUT_SETTING),
            write_device_cert: Script::new(devices::WRITE_DEVICE_CERT),
            touch_passes: Script::new(passes::TOUCH_PASSES),
            replace_pass: Script::new(passes::REPLACE_PASS),
        };
        Ok(RedisStore { shared: Arc::new(shared), runtime, changes, _stop: stop })
    }

    /// Runs `work` on the Redis runtime, bounded by `limit`.
    async fn run<T, F, Fut>(&self, limit: Duration, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
    {
        let work = work(Arc::clone(&self.shared));
        let bounded = async move {
            timeout(limit, work).await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!("redis: no answer within {} ms", limit.as_millis())))
            })
        };
        self.runtime.spawn(bounded).await.map_err(|e| StoreError::Unavailable(format!("redis task failed: {e}")))?
    }

    async fn update<T, F>(&self, user: &str, change: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&mut UserRecord) -> (T, Option<Change>) + Send + 'static,
    {
        let user = user.to_owned();
        self.run(CALL_TIMEOUT, move |s| async move { s.update(&user, change).await }).await
    }
}

/// The store a config's `server.store = "redis://…"` and `[redis]` describe;
/// key names are HMAC'd with a key derived from the instance secrets, so every
/// instance with the same `secrets.key` names keys alike.
pub fn from_config(
    store: &crate::config::StoreConfig,
    secrets: &super::secrets::Secrets,
) -> Result<RedisStore, String> {
    let opts = options_from_config(store, secrets.derive("redis key names"))?;
    RedisStore::connect(opts).map_err(|e| e.to_string())
}

/// The options a config's Redis store names (the password read from its file).
pub fn options_from_config(store: &crate::config::StoreConfig, name_key: [u8; 32]) -> Result<RedisOptions, String> {
    let crate::config::StoreConfig::Redis {
        url,
        username,
        password_file,
        db,
        key_prefix,
        ca_file,
        client_cert,
        client_key,
        durable_replicas,
    } = store
    else {
        return Err("not a Redis store".into());
    };
    let password = match password_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| format!("redis.password_file `{}`: {e}", p.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    Ok(RedisOptions {
        url: url.clone(),
        username: username.clone(),
        password,
        db: *db,
        key_prefix: key_prefix.clone(),
        name_key,
        tls: RedisTls { ca_file: ca_file.clone(), client_cert: client_cert.clone().zip(client_key.clone()) },
        durable_replicas: *durable_replicas,
    })
}

/// What `portcullis run` checks before it opens a Redis store: that Redis
/// accepts the credentials, TLS and ACL. `Unreachable` is for the caller to
/// word (Redis may simply not be up yet).
pub fn check_at_start(store: &crate::config::StoreConfig) -> Result<(), AccessError> {
    let opts = options_from_config(store, [0; 32]).map_err(AccessError::Refused)?;
    check_access(&opts).map(drop)
}

/// What `portcullis check` says about a Redis store: an error when Redis
/// refuses this config (credentials, TLS, ACL); warnings when it cannot be
/// reached or when its persistence is off, because durable state
/// (enrollments, locks, revocations) must survive a Redis restart, so AOF
/// (`appendonly yes`) or at least RDB snapshots should be on.
pub fn check_server(store: &crate::config::StoreConfig) -> Result<Vec<String>, String> {
    if !matches!(store, crate::config::StoreConfig::Redis { .. }) {
        return Ok(Vec::new());
    }
    let opts = options_from_config(store, [0; 32])?;
    let mut conn = match check_access(&opts) {
        Ok(conn) => conn,
        Err(AccessError::Refused(e)) => return Err(e),
        Err(AccessError::Unreachable(e)) => {
            return Ok(vec![format!(
                "could not check the Redis server ({e}); make sure it is up and uses `appendonly yes`"
            )])
        }
    };
    let mut get = |name: &str| -> Result<String, String> {
        let map: std::collections::HashMap<String, String> =
            redis::cmd("CONFIG").arg("GET").arg(name).query(&mut conn).map_err(|e| e.to_string())?;
        Ok(map.get(name).cloned().unwrap_or_default())
    };
    let persistence = (|| Ok::<_, String>((get("appendonly")? == "yes", !get("save")?.trim().is_empty())))();
    Ok(match persistence {
        Ok((true, _)) => vec![],
        Ok((false, true)) => vec!["Redis has AOF off (RDB snapshots only): changes since the last snapshot (enrollments, locks, revocations) are lost if Redis restarts; set `appendonly yes`".into()],
        Ok((false, false)) => vec!["Redis persistence is off (`appendonly no`, no `save`): enrollments, locks and revocations are lost when Redis restarts; set `appendonly yes`".into()],
        Err(e) => vec![format!("could not check the Redis server's persistence ({e}); make sure it uses `appendonly yes`")],
    })
}

/// A runtime on its own thread; it ends when the returned sender is dropped.
fn start_runtime() -> StoreResult<(Handle, oneshot::Sender<()>)> {
    let failed = |e: std::io::Error| StoreError::Unavailable(format!("cannot start the redis runtime: {e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("portcullis-redis")
        .enable_all()
        .build()
        .map_err(failed)?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("portcullis-redis".into())
        .spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })
        .map_err(failed)?;
    Ok((handle, stop))
}

/// Key names. Anything a caller or user chose is HMAC'd.
struct Keys {
    prefix: String,
    mac: Hmac<Sha256>,
}

impl Keys {
    fn new(prefix: &str, name_key: &[u8; 32]) -> Keys {
        let mac = Hmac::new_from_slice(name_key).expect("HMAC takes a key of any length");
        Keys { prefix: prefix.to_owned(), mac }
    }

    fn hashed(&self, name: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(name.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn challenge(&self, key: &str) -> String {
        format!("{}ch:{}", self.prefix, self.hashed(key))
    }

    fn counter(&self, key: &str) -> String {
        format!("{}n:{}", self.prefix, self.hashed(key))
    }

    fn revoked(&self) -> String {
        format!("{}revoked", self.prefix)
    }

    fn setting(&self, name: &str) -> String {
        format!("{}setting:{name}", self.prefix)
    }

    fn changes(&self) -> String {
        format!("{}changes", self.prefix)
    }
}

/// serde_json of the value types here, which always serialise.
fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("store values always serialise")
}

/// KEYS: counter. ARGV: window in ms. The TTL is set with the first
/// increment (and repaired if a counter ever lacks one).
const COUNT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// KEYS: counter. Takes one back from a counter that exists and is above
/// zero; an expired counter is not brought back (it would have no TTL).
const UNCOUNT: &str = r"
if (tonumber(redis.call('GET', KEYS[1])) or 0) > 0 then return redis.call('DECR', KEYS[1]) end
return 0
";

/// KEYS: revoked set. ARGV: id, until, now, channel, change. Keeps the later
/// `until`, drops revocations of sessions that have expired anyway.
const REVOKE_SESSION: &str = r"
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
";

/// KEYS: setting. ARGV: value, only-if-absent ("1"/"0"), channel, change.
const PUT_SETTING: &str = r"
local ok
if ARGV[2] == '1' then ok = redis.call('SET', KEYS[1], ARGV[1], 'NX') else ok = redis.call('SET', KEYS[1], ARGV[1]) end
if ok then redis.call('PUBLISH', ARGV[3], ARGV[4]) return 1 end
return 0
";

impl Shared {
    /// Voids one session (or entrance pass) until `until` and publishes it.
    async fn revoke_session(&self, id: &str, until: u64) -> StoreResult<()> {
        let change = json(&Change::SessionRevoked { id: id.to_owned(), until });
        let _: i64 = self
            .revoke_session
            .key(self.keys.revoked())
            .arg(id)
            .arg(until)
            .arg(unix_now())
            .arg(self.keys.changes())
            .arg(change)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        self.durable(&self.keys.revoked()).await
    }

    /// With `durable_replicas`, waits until that many replicas have the
    /// write to `key` (and every earlier one on its connection); otherwise
    /// the caller hears that the change may be lost in a failover.
    async fn durable(&self, key: &str) -> StoreResult<()> {
        if self.durable_replicas == 0 {
            return Ok(());
        }
        let confirmed = self.conn.wait_replicas(key, self.durable_replicas, DURABLE_WAIT).await.map_err(unavailable)?;
        if confirmed < self.durable_replicas {
            return Err(StoreError::Unavailable(format!(
                "redis: the change is on the primary, but only {confirmed} of {} replicas confirmed it within {} ms \
                 (redis.durable_replicas); it may be lost if the primary fails now",
                self.durable_replicas,
                DURABLE_WAIT.as_millis()
            )));
        }
        Ok(())
    }

    async fn revocations(&self, now: u64) -> StoreResult<Revocations> {
        // Not one moment: a subscriber reads after it subscribed, so a change
        // made between the two reads also arrives on the feed.
        let sessions: Vec<(String, f64)> = query(
            &self.conn,
            cmd("ZRANGEBYSCORE").arg(self.keys.revoked()).arg(format!("({now}")).arg("+inf").arg("WITHSCORES"),
        )
        .await?;
        // A score is the `until` Unix time, an integer well inside f64's exact range.
        let revoked_sessions = sessions.into_iter().map(|(id, until)| (id, until as u64)).collect();
        let mut out = Revocations { not_before: Default::default(), revoked_sessions };
        self.not_before(&mut out).await?;
        Ok(out)
    }

    async fn export(&self, now: u64) -> StoreResult<Vec<Exported>> {
        let mut out = Vec::new();
        self.export_users(&mut out).await?;
        let sessions: Vec<(String, f64)> = query(
            &self.conn,
            cmd("ZRANGEBYSCORE").arg(self.keys.revoked()).arg(format!("({now}")).arg("+inf").arg("WITHSCORES"),
        )
        .await?;
        out.extend(sessions.into_iter().map(|(id, until)| Exported::RevokedSession { id, until: until as u64 }));
        self.export_device_certs(&mut out).await?;
        self.export_passes(&mut out).await?;
        Ok(out)
    }

    async fn import(&self, items: &[Exported]) -> StoreResult<()> {
        // One MULTI/EXEC per hash tag (a transaction cannot span slots on a
        // cluster); then Resync, so other instances re-read all of it.
        let mut pipes = ImportPipes::default();
        for item in items {
            match item {
                Exported::User { user, record } => self.import_user(&mut pipes, user, record),
                Exported::RevokedSession { id, until } => {
                    let key = self.keys.revoked();
                    pipes.for_key(&key).cmd("ZADD").arg(&key).arg(*until).arg(id).ignore();
                }
                Exported::DeviceCert { cert } => self.import_device_cert(&mut pipes, cert),
                Exported::EntrancePass { pass } => self.import_pass(&mut pipes, pass),
            }
        }
        for (key, pipe) in &pipes.0 {
            pipe.exec_async(&mut self.conn.clone()).await.map_err(unavailable)?;
            self.durable(key).await?;
        }
        let resync = json(&Change::Resync);
        cmd("PUBLISH")
            .arg(self.keys.changes())
            .arg(resync)
            .exec_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }
}

/// An import's transactions, one per hash tag (keyed by the first key seen with it).
#[derive(Default)]
struct ImportPipes(Vec<(String, redis::Pipeline)>);

impl ImportPipes {
    fn for_key(&mut self, key: &str) -> &mut redis::Pipeline {
        let tag = hash_tag(key);
        let at = match self.0.iter().position(|(k, _)| hash_tag(k) == tag) {
            Some(at) => at,
            None => {
                let mut pipe = redis::pipe();
                pipe.atomic();
                self.0.push((key.to_owned(), pipe));
                self.0.len() - 1
            }
        };
        &mut self.0[at].1
    }
}

/// The part of a key Redis Cluster hashes: the first non-empty `{…}`, else all of it.
fn hash_tag(key: &str) -> &str {
    match key.find('{').and_then(|open| key[open + 1..].find('}').map(|len| (open + 1, len))) {
        Some((start, len)) if len > 0 => &key[start..start + len],
        _ => key,
    }
}

async fn query<T: redis::FromRedisValue>(conn: &Conn, command: &mut Cmd) -> StoreResult<T> {
    command.query_async(&mut conn.clone()).await.map_err(unavailable)
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> StoreResult<T> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl Store for RedisStore {
    async fn publish(&self, change: Change) -> StoreResult<()> {
        let shared = &self.shared;
        redis::cmd("PUBLISH")
            .arg(shared.keys.changes())
            .arg(json(&change))
            .query_async::<i64>(&mut shared.conn.clone())
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn put_pass(&self, pass: &PassRecord) -> StoreResult<()> {
        let pass = pass.clone();
        self.run(CALL_TIMEOUT, move |s| async move { s.put_pass(&pass).await }).await
    }

    async fn passes(&self, user: Option<&str>) -> StoreResult<Vec<PassRecord>> {
        let user = user.map(str::to_owned);
        self.run(CALL_TIMEOUT, move |s| async move { s.passes(user.as_deref()).await }).await
    }

    async fn touch_passes(&self, seen: &[(String, u64)]) -> StoreResult<()> {
        let seen = seen.to_vec();
        self.run(CALL_TIMEOUT, move |s| async move { s.touch_passes(&seen).await }).await
    }

    async fn revoke_pass(&self, id: &str, until: u64) -> StoreResult<Option<PassRecord>> {
        let id = id.to_owned();
        self.run(CALL_TIMEOUT, move |s| async move { s.revoke_pass(&id, until).await }).await
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let key = self.shared.keys.setting(name);
        self.run(CALL_TIMEOUT, move |s| async move { query(&s.conn, cmd("GET").arg(key)).await }).await
    }

    async fn put_setting(&self, name: &str, value: &[u8], only_if_absent: bool) -> StoreResult<bool> {
        let (key, value) = (self.shared.keys.setting(name), value.to_vec());
        let change = json(&Change::SettingChanged { name: name.to_owned() });
        self.run(CALL_TIMEOUT, move |s| async move {
            let written: i64 = s
                .put_setting
                .key(&key)
                .arg(value)
                .arg(if only_if_absent { "1" } else { "0" })
                .arg(s.keys.changes())
                .arg(change)
                .invoke_async(&mut s.conn.clone())
                .await
                .map_err(unavailable)?;
            if written == 1 {
                s.durable(&key).await?;
            }
            Ok(written == 1)
        })
        .await
    }

    async fn put_challenge(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        let (key, value) = (self.shared.keys.challenge(key), value.to_vec());
        self.run(CALL_TIMEOUT, move |s| async move {
            query(&s.conn, cmd("SET").arg(key).arg(value).arg("PX").arg(millis(ttl))).await
        })
        .await
    }

    async fn get_challenge(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let key = self.shared.keys.challenge(key);
        self.run(CALL_TIMEOUT, move |s| async move { query(&s.conn, cmd("GET").arg(key)).await }).await
    }

    async fn take_challenge(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let key = self.shared.keys.challenge(key);
        self.run(CALL_TIMEOUT, move |s| async move { query(&s.conn, cmd("GETDEL").arg(key)).await }).await
    }

    async fn delete_challenge(&self, key: &str) -> StoreResult<()> {
        let key = self.shared.keys.challenge(key);
        self.run(CALL_TIMEOUT, move |s| async move { query(&s.conn, cmd("DEL").arg(key)).await }).await
    }

    async fn count(&self, key: &str, window: Duration) -> StoreResult<u64> {
        let key = self.shared.keys.counter(key);
        self.run(CALL_TIMEOUT, move |s| async move {
            s.count.key(key).arg(millis(window)).invoke_async(&mut s.conn.clone()).await.map_err(unavailable)
        })
        .await
    }

    async fn uncount(&self, key: &str) -> StoreResult<()> {
        let key = self.shared.keys.counter(key);
        self.run(CALL_TIMEOUT, move |s| async move {
            let _: i64 = Script::new(UNCOUNT).key(key).invoke_async(&mut s.conn.clone()).await.map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn user(&self, user: &str) -> StoreResult<UserRecord> {
        let user = user.to_owned();
        self.run(CALL_TIMEOUT, move |s| async move {
            let field = s.keys.hashed(&user);
            Ok(s.read_user(&field, &user).await?.1)
        })
        .await
    }

    async fn set_pending_totp(&self, user: &str, record: TotpRecord) -> StoreResult<bool> {
        self.update(user, move |r| (r.begin_enrollment(record.clone()), None)).await
    }

    async fn confirm_totp(&self, user: &str, step: u64, recovery_hashes: Vec<String>) -> StoreResult<bool> {
        self.update(user, move |r| (r.confirm_totp(step, recovery_hashes.clone()), None)).await
    }

    async fn use_totp_step(&self, user: &str, step: u64) -> StoreResult<bool> {
        self.update(user, move |r| (r.use_totp_step(step), None)).await
    }

    async fn use_recovery_code(&self, user: &str, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_owned();
        self.update(user, move |r| (r.use_recovery_code(&hash), None)).await
    }

    async fn set_recovery_codes(&self, user: &str, hashes: Vec<String>) -> StoreResult<()> {
        self.update(user, move |r| {
            r.recovery = hashes.clone();
            ((), None)
        })
        .await
    }

    async fn record_failure(&self, user: &str, max_failures: u32, lock: Lock) -> StoreResult<FailureOutcome> {
        let name = user.to_owned();
        self.update(user, move |r| {
            let outcome = r.fail(max_failures, lock.clone());
            (outcome, outcome.locked_now.then(|| Change::Locked { user: name.clone() }))
        })
        .await
    }

    async fn reserve_guess(&self, user: &str, max_failures: u32, lock: Lock) -> StoreResult<bool> {
        let name = user.to_owned();
        self.update(user, move |r| {
            let reservation = r.reserve_guess(max_failures, lock.clone());
            let locked_now = reservation == Reservation::LockedNow;
            (reservation.granted(), locked_now.then(|| Change::Locked { user: name.clone() }))
        })
        .await
    }

    async fn settle_failure(&self, user: &str, max_failures: u32, lock: Lock) -> StoreResult<FailureOutcome> {
        let name = user.to_owned();
        self.update(user, move |r| {
            let outcome = r.settle_failure(max_failures, lock.clone());
            (outcome, outcome.locked_now.then(|| Change::Locked { user: name.clone() }))
        })
        .await
    }

    async fn release_guess(&self, user: &str) -> StoreResult<()> {
        self.update(user, |r| {
            r.release_guess();
            ((), None)
        })
        .await
    }

    async fn reset_failures(&self, user: &str) -> StoreResult<()> {
        self.update(user, |r| {
            r.failures = 0;
            ((), None)
        })
        .await
    }

    async fn unlock(&self, user: &str) -> StoreResult<bool> {
        let name = user.to_owned();
        self.update(user, move |r| {
            let was_locked = r.unlock();
            (was_locked, was_locked.then(|| Change::Unlocked { user: name.clone() }))
        })
        .await
    }

    async fn locked(&self, now: u64) -> StoreResult<Vec<(String, Lock)>> {
        self.run(CALL_TIMEOUT, move |s| async move { s.locked(now).await }).await
    }

    async fn revoke_totp(&self, user: &str, at: u64) -> StoreResult<()> {
        let name = user.to_owned();
        self.update(user, move |r| ((), Some(Change::SessionsNotBefore { user: name.clone(), at: r.revoke_totp(at) })))
            .await
    }

    async fn sign_out_everywhere(&self, user: &str, at: u64) -> StoreResult<u64> {
        let name = user.to_owned();
        self.update(user, move |r| {
            let not_before = r.sign_out_everywhere(at);
            (not_before, Some(Change::SessionsNotBefore { user: name.clone(), at: not_before }))
        })
        .await
    }

    async fn set_invitation(&self, user: &str, invitation: Option<Invitation>) -> StoreResult<()> {
        self.update(user, move |r| {
            r.invitation = invitation.clone().map(Box::new);
            ((), None)
        })
        .await
    }

    async fn try_invitation(&self, user: &str, code_hash: &str, now: u64) -> StoreResult<InvitationTry> {
        let code_hash = code_hash.to_owned();
        self.update(user, move |r| (r.try_invitation(&code_hash, now), None)).await
    }

    async fn settle_invitation(&self, user: &str, code_hash: &str, used_at: Option<u64>) -> StoreResult<()> {
        let code_hash = code_hash.to_owned();
        self.update(user, move |r| (r.settle_invitation(&code_hash, used_at), None)).await
    }

    async fn revoke_session(&self, id: &str, until: u64) -> StoreResult<()> {
        let id = id.to_owned();
        self.run(CALL_TIMEOUT, move |s| async move { s.revoke_session(&id, until).await }).await
    }

    async fn revocations(&self) -> StoreResult<Revocations> {
        self.run(CALL_TIMEOUT, move |s| async move { s.revocations(unix_now()).await }).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    async fn device_certs(&self) -> StoreResult<Vec<DeviceCert>> {
        self.run(CALL_TIMEOUT, move |s| async move { Ok(s.device_certs().await?.1) }).await
    }

    async fn put_device_cert(
        &self,
        cert: DeviceCert,
        contracted: u32,
        now: u64,
    ) -> StoreResult<Result<(), QuotaError>> {
        let rule = move |certs: &[DeviceCert]| quota::check_issue(certs, &cert, contracted, now).map(|()| cert.clone());
        let out = self.run(CALL_TIMEOUT, move |s| async move { s.write_device_cert(rule).await }).await?;
        Ok(out.map(drop))
    }

    async fn update_device_cert(
        &self,
        serial: &str,
        update: CertUpdate,
        contracted: u32,
        now: u64,
    ) -> StoreResult<Result<DeviceCert, QuotaError>> {
        let serial = serial.to_owned();
        let rule = move |certs: &[DeviceCert]| quota::apply_update(certs, &serial, update, contracted, now);
        self.run(CALL_TIMEOUT, move |s| async move { s.write_device_cert(rule).await }).await
    }

    async fn export(&self) -> StoreResult<Vec<Exported>> {
        self.run(BULK_TIMEOUT, move |s| async move { s.export(unix_now()).await }).await
    }

    async fn import(&self, items: Vec<Exported>) -> StoreResult<()> {
        self.run(BULK_TIMEOUT, move |s| async move { s.import(&items).await }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_hide_user_names_and_caller_keys() {
        let keys = Keys::new("p:", &[7; 32]);
        let field = keys.hashed("alice");
        assert_eq!(field.len(), 64);
        assert!(!keys.of_user(&field, "users").contains("alice"));
        assert!(!keys.challenge("fail-ip:192.0.2.1").contains("192.0.2.1"));
        assert_ne!(keys.hashed("alice"), Keys::new("p:", &[8; 32]).hashed("alice"), "keyed by name_key");
        assert_ne!(keys.challenge("x"), keys.counter("x"), "challenges and counters apart");
    }

    #[test]
    fn hash_tags_are_read_as_redis_cluster_does() {
        assert_eq!(hash_tag("p:{u7}:users"), "u7");
        assert_eq!(hash_tag("p:{}:x{y}"), "p:{}:x{y}", "an empty tag means the whole key");
        assert_eq!(hash_tag("p:revoked"), "p:revoked");
        let mut pipes = ImportPipes::default();
        pipes.for_key("p:{u7}:users");
        pipes.for_key("p:{u7}:locks");
        pipes.for_key("p:{u8}:users");
        assert_eq!(pipes.0.len(), 2, "one transaction per hash tag");
    }

    #[test]
    fn options_debug_hides_secrets() {
        let mut opts = RedisOptions::new("redis://:hunter2@localhost/3", [1; 32]);
        opts.password = Some("hunter3".into());
        let shown = format!("{opts:?}");
        assert!(!shown.contains("hunter"), "{shown}");
    }

    #[test]
    fn url_db_and_password_are_overridden() {
        use access::connection_info;
        let mut opts = RedisOptions::new("redis://:fromurl@localhost:1/3", [1; 32]);
        let info = connection_info(&opts).unwrap();
        assert_eq!((info.redis_settings().db(), info.redis_settings().password()), (3, Some("fromurl")));
        opts.db = Some(5);
        opts.password = Some("fromfile".into());
        let info = connection_info(&opts).unwrap();
        assert_eq!((info.redis_settings().db(), info.redis_settings().password()), (5, Some("fromfile")));
        assert_eq!(info.redis_settings().username(), None);
        opts.url = "rediss://fromurl:pw@localhost:1".into();
        assert_eq!(connection_info(&opts).unwrap().redis_settings().username(), Some("fromurl"));
        opts.username = Some("acluser".into());
        assert_eq!(connection_info(&opts).unwrap().redis_settings().username(), Some("acluser"));
        opts.url = "http://localhost".into();
        assert!(matches!(connection_info(&opts), Err(StoreError::Unavailable(_))));
    }
}
