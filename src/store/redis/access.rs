//! How portcullis reaches Redis and whether it may do its work there: the
//! client (plain or TLS, with an optional client certificate and ACL user),
//! and the start-up check that turns Redis's refusals into one sentence each
//! (wrong credentials, an untrusted server certificate, an ACL without a
//! command, key or channel the store needs), so a misconfigured instance
//! says why it cannot start instead of retrying in silence.
//!
//! With `redis.ca_file` the server's certificate must chain to that CA: it
//! replaces the system's roots (an internal Redis has an internal CA; trusting
//! every public CA as well would only widen who can impersonate it).

use super::{target, RedisOptions, IO_TIMEOUT};
use crate::store::{StoreError, StoreResult};
use redis::{cmd, Client, ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, ProtocolVersion, TlsCertificates};
use std::path::{Path, PathBuf};

/// The TLS files of a `rediss://` store (`[redis] ca_file`, `client_cert`, `client_key`).
#[derive(Clone, Debug, Default)]
pub struct RedisTls {
    /// Trusted instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its key.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Why the start-up check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessError {
    /// Redis answered and said no (credentials, TLS trust, ACL): the config must change.
    Refused(String),
    /// No answer (down, wrong address): it may come back by itself.
    Unreachable(String),
}

impl std::fmt::Display for AccessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessError::Refused(s) | AccessError::Unreachable(s) => f.write_str(s),
        }
    }
}

/// The client `opts` describe.
pub(super) fn client(opts: &RedisOptions) -> StoreResult<Client> {
    let info = connection_info(opts)?;
    let settings_error = |e: redis::RedisError| StoreError::Unavailable(format!("redis settings: {e}"));
    match tls_certificates(opts)? {
        None => Client::open(info).map_err(settings_error),
        Some(_) if !matches!(info.addr(), ConnectionAddr::TcpTls { .. }) => Err(StoreError::Unavailable(
            "redis.ca_file, redis.client_cert and redis.client_key need a `rediss://` URL".into(),
        )),
        Some(certs) => Client::build_with_tls(info, certs).map_err(settings_error),
    }
}

/// The CA and client certificate the `[redis]` TLS files name, if any.
pub(super) fn tls_certificates(opts: &RedisOptions) -> StoreResult<Option<TlsCertificates>> {
    if opts.tls.ca_file.is_none() && opts.tls.client_cert.is_none() {
        return Ok(None);
    }
    let read = |key: &str, path: &Path| {
        std::fs::read(path).map_err(|e| StoreError::Unavailable(format!("redis.{key} `{}`: {e}", path.display())))
    };
    let root_cert = opts.tls.ca_file.as_deref().map(|p| read("ca_file", p)).transpose()?;
    let client_tls = match &opts.tls.client_cert {
        Some((cert, key)) => {
            Some(ClientTlsConfig { client_cert: read("client_cert", cert)?, client_key: read("client_key", key)? })
        }
        None => None,
    };
    Ok(Some(TlsCertificates { client_tls, root_cert }))
}

/// The URL with the `[redis]` overrides. Never echoes the URL: it may carry the password.
pub(super) fn connection_info(opts: &RedisOptions) -> StoreResult<redis::ConnectionInfo> {
    let info = opts
        .url
        .as_str()
        .into_connection_info()
        .map_err(|e| StoreError::Unavailable(format!("invalid redis url ({:?})", e.kind())))?;
    let mut settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    if let Some(user) = &opts.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &opts.password {
        settings = settings.set_password(password);
    }
    if let Some(db) = opts.db {
        settings = settings.set_db(db);
    }
    Ok(info.set_redis_settings(settings))
}

/// Connects as the store will and checks, without changing anything, that
/// Redis lets this user run every command the store sends on its keys and
/// channel. Returns the connection for further looks (persistence).
/// With a cluster, the first seed node that answers is checked, and the
/// cluster must say its state is `ok`.
pub fn check_access(opts: &RedisOptions) -> Result<redis::Connection, AccessError> {
    if target::is_cluster(&opts.url) {
        let nodes = target::node_options(opts).map_err(AccessError::Refused)?;
        let mut last = AccessError::Unreachable("redis cluster: no seed node".into());
        for node in &nodes {
            match check_node(node, opts) {
                Err(e @ AccessError::Unreachable(_)) => last = e,
                Err(refused) => return Err(refused),
                Ok(mut conn) => {
                    let info: String = cmd("CLUSTER").arg("INFO").query(&mut conn).map_err(|e| explain(&e, opts))?;
                    if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                        return Err(AccessError::Unreachable(
                            "redis cluster: the cluster's state is not `ok` (are all slots served?)".into(),
                        ));
                    }
                    return Ok(conn);
                }
            }
        }
        return Err(last);
    }
    let client = if opts.url.starts_with(target::SCHEME) {
        let mut sentinel = target::sentinel_client(opts).map_err(AccessError::Refused)?;
        sentinel.get_client().map_err(|e| explain(&e, opts))?
    } else {
        client(opts).map_err(|e| AccessError::Refused(e.to_string()))?
    };
    connect_and_probe(&client, opts)
}

fn check_node(node: &RedisOptions, opts: &RedisOptions) -> Result<redis::Connection, AccessError> {
    let client = client(node).map_err(|e| AccessError::Refused(e.to_string()))?;
    connect_and_probe(&client, opts)
}

fn connect_and_probe(client: &Client, opts: &RedisOptions) -> Result<redis::Connection, AccessError> {
    let mut conn = client.get_connection_with_timeout(IO_TIMEOUT).map_err(|e| explain(&e, opts))?;
    conn.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| explain(&e, opts))?;
    conn.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| explain(&e, opts))?;
    cmd("PING").query::<redis::Value>(&mut conn).map_err(|e| explain(&e, opts))?;
    probe_commands(&mut conn, opts)?;
    refuse_old_layout(&mut conn, opts)?;
    Ok(conn)
}

/// Keys of the layout before hash tags (before Redis Cluster support): the
/// data must be moved with `portcullis store export` / `import`, not read as empty.
fn refuse_old_layout(conn: &mut redis::Connection, opts: &RedisOptions) -> Result<(), AccessError> {
    let p = &opts.key_prefix;
    let old = ["not_before", "locks", "device_certs", "passes"].map(|k| format!("{p}{k}"));
    // On a cluster node a key of another slot answers MOVED: it is then not here.
    let found = old.iter().any(|k| cmd("EXISTS").arg(k).query::<i64>(conn).is_ok_and(|n| n > 0));
    match found {
        false => Ok(()),
        true => Err(AccessError::Refused(format!(
            "redis holds portcullis data under `{p}` in the key layout of an earlier version (keys such as `{p}locks`); \
             export it with that version (`portcullis admin store export`) and import it with this one (`portcullis admin store import`), or use another redis.key_prefix"
        ))),
    }
}

/// Every command the store sends (directly or from its scripts), queued in a
/// transaction that is then discarded: Redis checks the ACL (command, keys,
/// channel) when it queues, and runs nothing.
fn probe_commands(conn: &mut redis::Connection, opts: &RedisOptions) -> Result<(), AccessError> {
    if cmd("MULTI").query::<()>(conn).is_err() {
        // Without MULTI nothing can be checked harmlessly; the store itself does not need it.
        return Ok(());
    }
    let key = format!("{}probe", opts.key_prefix);
    let channel = format!("{}changes", opts.key_prefix);
    let sha = "0000000000000000000000000000000000000000";
    let probes: &[&[&str]] = &[
        &["EVALSHA", sha, "1", &key],
        &["SCRIPT", "LOAD", "return 1"],
        &["GET", &key],
        &["SET", &key, "1", "PX", "1000"],
        &["GETDEL", &key],
        &["INCR", &key],
        &["DECR", &key],
        &["PEXPIRE", &key, "1000"],
        &["PTTL", &key],
        &["DEL", &key],
        &["HGET", &key, "f"],
        &["HSET", &key, "f", "v"],
        &["HDEL", &key, "f"],
        &["HEXISTS", &key, "f"],
        &["HGETALL", &key],
        &["HVALS", &key],
        &["ZADD", &key, "1", "m"],
        &["ZRANGEBYSCORE", &key, "0", "1"],
        &["ZREMRANGEBYSCORE", &key, "0", "1"],
        &["PUBLISH", &channel, ""],
        &["SUBSCRIBE", &channel],
    ];
    let mut refused = None;
    for probe in probes {
        let mut c = cmd(probe[0]);
        for arg in &probe[1..] {
            c.arg(*arg);
        }
        match c.query::<redis::Value>(conn) {
            // A cluster node redirects a key of another slot: the ACL passed it first.
            Err(e) if matches!(e.code(), Some("MOVED" | "ASK")) => {}
            Err(e) => {
                refused = Some(explain_refusal(&e, probe[0], opts));
                break;
            }
            Ok(_) => {}
        }
    }
    let _ = cmd("DISCARD").query::<redis::Value>(conn);
    refused.map_or(Ok(()), Err)
}

fn user(opts: &RedisOptions) -> String {
    let from_url =
        opts.url.as_str().into_connection_info().ok().and_then(|i| i.redis_settings().username().map(String::from));
    opts.username.clone().or(from_url).unwrap_or_else(|| "default".into())
}

/// A probe that Redis did not queue: an ACL refusal, or something the store
/// cannot work without.
fn explain_refusal(e: &redis::RedisError, command: &str, opts: &RedisOptions) -> AccessError {
    let text = e.detail().unwrap_or_default();
    let user = user(opts);
    let p = &opts.key_prefix;
    if e.code() != Some("NOPERM") {
        return match e.is_io_error() || e.is_timeout() {
            true => AccessError::Unreachable(format!("redis stopped answering while checking {command}: {e}")),
            false => AccessError::Refused(format!("redis refused {command}, which portcullis needs: {e}")),
        };
    }
    AccessError::Refused(if text.contains("channel") {
        format!("redis user `{user}` may not use the channel `{p}changes` (check its ACL: &{p}changes)")
    } else if text.contains("key") {
        format!("redis user `{user}` may not use the keys under `{p}` with {command} (check its ACL: ~{p}*)")
    } else {
        format!("redis user `{user}` may not run {command} (check its ACL)")
    })
}

/// One sentence for a failed connection attempt.
fn explain(e: &redis::RedisError, opts: &RedisOptions) -> AccessError {
    let text = format!("{e} {e:?}");
    let user = user(opts);
    if e.kind() == redis::ErrorKind::AuthenticationFailed || text.contains("WRONGPASS") {
        let detail = e.detail().map_or_else(|| e.to_string(), |d| format!("WRONGPASS {d}"));
        return AccessError::Refused(format!("redis refused the credentials for user `{user}`: {detail}"));
    }
    if text.contains("NOAUTH") {
        return AccessError::Refused(
            "redis asks for a password: set redis.password_file (and redis.username for an ACL user)".into(),
        );
    }
    if e.code() == Some("NOPERM") {
        let command = text.split('\'').nth(1).unwrap_or("a command").to_uppercase();
        return AccessError::Refused(format!("redis user `{user}` may not run {command} (check its ACL)"));
    }
    if let Some(tls) = explain_tls(&text, opts) {
        return AccessError::Refused(tls);
    }
    AccessError::Unreachable(format!("redis: {e}"))
}

/// The TLS failures rustls reports (as text: the redis crate wraps them in I/O errors).
fn explain_tls(text: &str, opts: &RedisOptions) -> Option<String> {
    let trusted_by = match &opts.tls.ca_file {
        Some(p) => format!("redis.ca_file `{}`", p.display()),
        None => "the system's root certificates (set redis.ca_file to the CA that issued it)".into(),
    };
    if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        return Some(format!("TLS: the Redis server's certificate is not trusted by {trusted_by}"));
    }
    if text.contains("NotValidForName") {
        return Some("TLS: the Redis server's certificate does not name the host in server.store".into());
    }
    if text.contains("invalid peer certificate") {
        let why = text.split("invalid peer certificate: ").nth(1).and_then(|r| r.split_whitespace().next());
        return Some(format!("TLS: the Redis server's certificate was refused ({})", why.unwrap_or("invalid")));
    }
    if text.contains("CertificateRequired") || (text.contains("alert") && opts.tls.client_cert.is_none()) {
        return Some(
            "TLS: the Redis server asks for a client certificate: set redis.client_cert and redis.client_key".into(),
        );
    }
    if let Some(alert) = text.split("received fatal alert: ").nth(1).and_then(|r| r.split_whitespace().next()) {
        return Some(format!(
            "TLS: the Redis server ended the handshake ({alert}): does it trust the CA of redis.client_cert?"
        ));
    }
    None
}
