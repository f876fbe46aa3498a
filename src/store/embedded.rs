//! The single-node backend (DESIGN.md, "State"): challenge state lives in
//! memory with TTLs, durable per-user state in one redb file.
//!
//! Every mutating call is one redb write transaction doing read-modify-write.
//! redb runs one write transaction at a time, so the races the trait cares
//! about (`use_totp_step`, `use_recovery_code`, `record_failure`,
//! `confirm_totp`) are settled by the database, not by locks here. redb is
//! blocking I/O, so every database call runs on tokio's blocking pool.

use super::{
    quota, CertUpdate, Change, DeviceCert, Exported, FailureOutcome, Invitation, InvitationTry, Lock, PassRecord,
    QuotaError, Reservation, Revocations, Store, StoreError, StoreResult, TotpRecord, UserRecord,
};
use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// User name → serde_json of [`UserRecord`].
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Revoked session id → unix time after which the session would have expired anyway.
const REVOKED_SESSIONS: TableDefinition<&str, u64> = TableDefinition::new("revoked_sessions");
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
/// Device certificate serial → serde_json of [`DeviceCert`].
const DEVICE_CERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("device_certs");
/// Entrance pass id → serde_json of [`PassRecord`], `last_seen` included
/// (a touch rewrites the record in its write transaction).
const PASSES: TableDefinition<&str, &[u8]> = TableDefinition::new("passes");

const FILE_NAME: &str = "portcullis.redb";
const CHANGE_CAPACITY: usize = 1024;
/// Expired challenge state is dropped on every this-many writes, so the maps
/// stay bounded without a background task.
const SWEEP_EVERY_WRITES: u32 = 1024;
/// Every this-many `revoke_session` calls also drop the expired revocations.
const SWEEP_EVERY_REVOCATIONS: u32 = 256;

pub struct EmbeddedStore {
    db: Arc<Database>,
    challenges: Mutex<Expiring<Vec<u8>>>,
    counters: Mutex<Expiring<u64>>,
    revocations_written: AtomicU32,
    changes: broadcast::Sender<Change>,
}

impl EmbeddedStore {
    /// Opens (creating) `<state_dir>/portcullis.redb`. Crash-safe (redb's durable commits).
    pub fn open(state_dir: &Path) -> Result<EmbeddedStore, StoreError> {
        let path = state_dir.join(FILE_NAME);
        // redb would create the file with the default mode: make it private first.
        crate::state_dir::create_private_file(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", path.display())))?;
        let db = Database::create(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        // Creating the tables up front lets read transactions assume they exist.
        let tx = db.begin_write().map_err(unavailable)?;
        {
            tx.open_table(USERS).map_err(unavailable)?;
            tx.open_table(DEVICE_CERTS).map_err(unavailable)?;
            tx.open_table(PASSES).map_err(unavailable)?;
            let mut revoked = tx.open_table(REVOKED_SESSIONS).map_err(unavailable)?;
            drop_expired(&mut revoked, unix_now())?;
        }
        tx.commit().map_err(unavailable)?;
        let (changes, _) = broadcast::channel(CHANGE_CAPACITY);
        Ok(EmbeddedStore {
            db: Arc::new(db),
            challenges: Mutex::new(Expiring::default()),
            counters: Mutex::new(Expiring::default()),
            revocations_written: AtomicU32::new(0),
            changes,
        })
    }

    /// Runs `f` against the database on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Unavailable(format!("embedded store task failed: {e}")))?
    }

    /// Read-modify-write of one user's record in one write transaction.
    async fn update<T, F>(&self, user: &str, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut UserRecord) -> T + Send + 'static,
    {
        let user = user.to_owned();
        self.blocking(move |db| update_user(db, &user, f)).await
    }

    fn publish(&self, change: Change) {
        // An error only means nobody is subscribed right now.
        let _ = self.changes.send(change);
    }

    fn challenges(&self) -> MutexGuard<'_, Expiring<Vec<u8>>> {
        // Each change to a map is one call, so a panicking holder leaves it consistent.
        self.challenges.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn counters(&self) -> MutexGuard<'_, Expiring<u64>> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn update_user<T>(db: &Database, user: &str, f: impl FnOnce(&mut UserRecord) -> T) -> StoreResult<T> {
    let tx = db.begin_write().map_err(unavailable)?;
    let (out, changed) = {
        let mut table = tx.open_table(USERS).map_err(unavailable)?;
        let before = match table.get(user).map_err(unavailable)? {
            Some(bytes) => decode(user, bytes.value())?,
            None => UserRecord::default(),
        };
        let mut record = before.clone();
        let out = f(&mut record);
        let changed = record != before;
        if changed {
            table.insert(user, encode(&record).as_slice()).map_err(unavailable)?;
        }
        (out, changed)
    };
    // A refused step (replayed code, unknown user) writes nothing and costs no fsync.
    if changed {
        tx.commit().map_err(unavailable)?;
    } else {
        tx.abort().map_err(unavailable)?;
    }
    Ok(out)
}

/// Every device certificate, decoded.
fn read_device_certs(table: &impl ReadableTable<&'static str, &'static [u8]>) -> StoreResult<Vec<DeviceCert>> {
    let mut out = Vec::new();
    for entry in table.iter().map_err(unavailable)? {
        let (serial, bytes) = entry.map_err(unavailable)?;
        out.push(
            serde_json::from_slice(bytes.value())
                .map_err(|e| StoreError::Corrupt(format!("device certificate {:?}: {e}", serial.value())))?,
        );
    }
    Ok(out)
}

/// One registry change in one write transaction: `rule` sees every
/// certificate and returns the record to write, or why nothing is written.
fn write_device_cert(
    db: &Database,
    rule: impl FnOnce(&[DeviceCert]) -> Result<DeviceCert, QuotaError>,
) -> StoreResult<Result<DeviceCert, QuotaError>> {
    let tx = db.begin_write().map_err(unavailable)?;
    let out = {
        let mut table = tx.open_table(DEVICE_CERTS).map_err(unavailable)?;
        let out = rule(&read_device_certs(&table)?);
        if let Ok(cert) = &out {
            table.insert(cert.serial.as_str(), json_bytes(cert).as_slice()).map_err(unavailable)?;
        }
        out
    };
    match out {
        Ok(_) => tx.commit().map_err(unavailable)?,
        Err(_) => tx.abort().map_err(unavailable)?,
    }
    Ok(out)
}

fn json_bytes(cert: &DeviceCert) -> Vec<u8> {
    serde_json::to_vec(cert).expect("a DeviceCert always serialises")
}

/// Every entrance pass (of `user`, when given), newest first.
fn read_passes(db: &Database, user: Option<&str>) -> StoreResult<Vec<PassRecord>> {
    let tx = db.begin_read().map_err(unavailable)?;
    let table = tx.open_table(PASSES).map_err(unavailable)?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(unavailable)? {
        let (id, bytes) = entry.map_err(unavailable)?;
        let pass = decode_pass(id.value(), bytes.value())?;
        if user.is_none_or(|u| pass.user == u) {
            out.push(pass);
        }
    }
    super::sort_passes(&mut out);
    Ok(out)
}

fn read_pass(db: &Database, id: &str) -> StoreResult<Option<PassRecord>> {
    let tx = db.begin_read().map_err(unavailable)?;
    let table = tx.open_table(PASSES).map_err(unavailable)?;
    let bytes = table.get(id).map_err(unavailable)?;
    bytes.map(|b| decode_pass(id, b.value())).transpose()
}

/// Read-modify-write of some passes in one write transaction: `change` sees
/// each known pass with what its caller gave for it and says whether it
/// changed the pass (unknown ids are skipped). Nothing changed, nothing is
/// written. Returns each known pass as it was before.
fn update_passes<'a, A>(
    db: &Database,
    items: impl IntoIterator<Item = (&'a str, A)>,
    mut change: impl FnMut(A, &mut PassRecord) -> bool,
) -> StoreResult<Vec<PassRecord>> {
    let tx = db.begin_write().map_err(unavailable)?;
    let mut before = Vec::new();
    let mut changed = false;
    {
        let mut table = tx.open_table(PASSES).map_err(unavailable)?;
        for (id, arg) in items {
            let stored = table.get(id).map_err(unavailable)?.map(|b| decode_pass(id, b.value())).transpose()?;
            let Some(pass) = stored else { continue };
            let mut after = pass.clone();
            if change(arg, &mut after) {
                table.insert(id, pass_bytes(&after).as_slice()).map_err(unavailable)?;
                changed = true;
            }
            before.push(pass);
        }
    }
    if changed {
        tx.commit().map_err(unavailable)?;
    } else {
        tx.abort().map_err(unavailable)?;
    }
    Ok(before)
}

fn decode_pass(id: &str, bytes: &[u8]) -> StoreResult<PassRecord> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("entrance pass {id:?}: {e}")))
}

fn pass_bytes(pass: &PassRecord) -> Vec<u8> {
    serde_json::to_vec(pass).expect("a PassRecord always serialises")
}

fn read_user(db: &Database, user: &str) -> StoreResult<UserRecord> {
    let tx = db.begin_read().map_err(unavailable)?;
    let table = tx.open_table(USERS).map_err(unavailable)?;
    match table.get(user).map_err(unavailable)? {
        Some(bytes) => decode(user, bytes.value()),
        None => Ok(UserRecord::default()),
    }
}

/// Every stored user, decoded; `keep` picks what the caller wants of each.
fn scan_users<T>(db: &Database, mut keep: impl FnMut(String, UserRecord) -> Option<T>) -> StoreResult<Vec<T>> {
    let tx = db.begin_read().map_err(unavailable)?;
    let table = tx.open_table(USERS).map_err(unavailable)?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(unavailable)? {
        let (name, bytes) = entry.map_err(unavailable)?;
        let record = decode(name.value(), bytes.value())?;
        out.extend(keep(name.value().to_owned(), record));
    }
    Ok(out)
}

fn read_revocations(db: &Database, now: u64) -> StoreResult<Revocations> {
    let not_before = scan_users(db, |name, r| (r.sessions_not_before > 0).then_some((name, r.sessions_not_before)))?;
    let tx = db.begin_read().map_err(unavailable)?;
    let table = tx.open_table(REVOKED_SESSIONS).map_err(unavailable)?;
    let mut revoked_sessions = super::RevokedSessions::default();
    for entry in table.iter().map_err(unavailable)? {
        let (id, until) = entry.map_err(unavailable)?;
        if until.value() > now {
            revoked_sessions.insert(id.value().to_owned(), until.value());
        }
    }
    Ok(Revocations { not_before: not_before.into_iter().collect(), revoked_sessions })
}

fn write_revoked_session(db: &Database, id: &str, until: u64, sweep: bool) -> StoreResult<()> {
    let tx = db.begin_write().map_err(unavailable)?;
    {
        let mut table = tx.open_table(REVOKED_SESSIONS).map_err(unavailable)?;
        let earlier = table.get(id).map_err(unavailable)?.map(|u| u.value());
        let until = earlier.map_or(until, |e| e.max(until));
        table.insert(id, until).map_err(unavailable)?;
        if sweep {
            drop_expired(&mut table, unix_now())?;
        }
    }
    tx.commit().map_err(unavailable)
}

/// Revocations of sessions that have expired anyway protect nothing.
fn drop_expired(table: &mut redb::Table<&str, u64>, now: u64) -> StoreResult<()> {
    table.retain(|_, until| until > now).map_err(unavailable)
}

fn decode(user: &str, bytes: &[u8]) -> StoreResult<UserRecord> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("record of user {user:?}: {e}")))
}

fn encode(record: &UserRecord) -> Vec<u8> {
    serde_json::to_vec(record).expect("a UserRecord always serialises")
}

fn unavailable(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {}", e.into()))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Short-lived values with a deadline. Expired entries are invisible at once
/// and removed in bulk every [`SWEEP_EVERY_WRITES`] writes.
struct Expiring<V> {
    entries: HashMap<String, (V, Instant)>,
    writes: u32,
}

impl<V> Default for Expiring<V> {
    fn default() -> Self {
        Expiring { entries: HashMap::new(), writes: 0 }
    }
}

impl<V> Expiring<V> {
    fn live(&self, key: &str, now: Instant) -> Option<&V> {
        self.entries.get(key).filter(|(_, expires_at)| now < *expires_at).map(|(v, _)| v)
    }

    fn live_mut(&mut self, key: &str, now: Instant) -> Option<&mut V> {
        self.entries.get_mut(key).filter(|(_, expires_at)| now < *expires_at).map(|(v, _)| v)
    }

    fn insert(&mut self, key: &str, value: V, expires_at: Instant, now: Instant) {
        self.writes = self.writes.wrapping_add(1);
        if self.writes.is_multiple_of(SWEEP_EVERY_WRITES) {
            self.entries.retain(|_, (_, e)| now < *e);
        }
        self.entries.insert(key.to_owned(), (value, expires_at));
    }

    fn take(&mut self, key: &str, now: Instant) -> Option<V> {
        self.entries.remove(key).filter(|(_, expires_at)| now < *expires_at).map(|(v, _)| v)
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn publish(&self, change: Change) -> StoreResult<()> {
        EmbeddedStore::publish(self, change);
        Ok(())
    }

    async fn put_pass(&self, pass: &PassRecord) -> StoreResult<()> {
        let pass = pass.clone();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            tx.open_table(PASSES)
                .map_err(unavailable)?
                .insert(pass.id.as_str(), pass_bytes(&pass).as_slice())
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn passes(&self, user: Option<&str>) -> StoreResult<Vec<PassRecord>> {
        let user = user.map(str::to_owned);
        self.blocking(move |db| read_passes(db, user.as_deref())).await
    }

    async fn touch_passes(&self, seen: &[(String, u64)]) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let seen = seen.to_vec();
        self.blocking(move |db| {
            let raise = |at: u64, pass: &mut PassRecord| {
                let raised = at > pass.last_seen;
                if raised {
                    pass.last_seen = at;
                }
                raised
            };
            update_passes(db, seen.iter().map(|(id, at)| (id.as_str(), *at)), raise).map(drop)
        })
        .await
    }

    async fn revoke_pass(&self, id: &str, until: u64) -> StoreResult<Option<PassRecord>> {
        let owned = id.to_owned();
        if self.blocking(move |db| read_pass(db, &owned)).await?.is_none() {
            return Ok(None);
        }
        // Voided first, then marked: a failure in between leaves a pass that
        // no longer works but is not shown revoked yet (a retry finishes it),
        // never one shown revoked that still works.
        self.revoke_session(id, until).await?;
        let owned = id.to_owned();
        let before = self
            .blocking(move |db| {
                update_passes(db, [(owned.as_str(), ())], |(), p| !std::mem::replace(&mut p.revoked, true))
            })
            .await?;
        Ok(before.into_iter().next())
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let name = name.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let table = match tx.open_table(SETTINGS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(unavailable(e)),
            };
            Ok(table.get(name.as_str()).map_err(unavailable)?.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn put_setting(&self, name: &str, value: &[u8], only_if_absent: bool) -> StoreResult<bool> {
        let (owned, value) = (name.to_owned(), value.to_vec());
        let written = self
            .blocking(move |db| {
                let tx = db.begin_write().map_err(unavailable)?;
                let written = {
                    let mut table = tx.open_table(SETTINGS).map_err(unavailable)?;
                    let present = table.get(owned.as_str()).map_err(unavailable)?.is_some();
                    if only_if_absent && present {
                        false
                    } else {
                        table.insert(owned.as_str(), value.as_slice()).map_err(unavailable)?;
                        true
                    }
                };
                tx.commit().map_err(unavailable)?;
                Ok(written)
            })
            .await?;
        if written {
            self.publish(Change::SettingChanged { name: name.to_owned() });
        }
        Ok(written)
    }

    async fn put_challenge(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        let now = Instant::now();
        self.challenges().insert(key, value.to_vec(), now + ttl, now);
        Ok(())
    }

    async fn get_challenge(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.challenges().live(key, Instant::now()).cloned())
    }

    async fn take_challenge(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.challenges().take(key, Instant::now()))
    }

    async fn delete_challenge(&self, key: &str) -> StoreResult<()> {
        self.challenges().entries.remove(key);
        Ok(())
    }

    async fn count(&self, key: &str, window: Duration) -> StoreResult<u64> {
        let now = Instant::now();
        let mut counters = self.counters();
        if let Some(n) = counters.live_mut(key, now) {
            *n += 1;
            return Ok(*n);
        }
        counters.insert(key, 1, now + window, now);
        Ok(1)
    }

    async fn uncount(&self, key: &str) -> StoreResult<()> {
        if let Some(n) = self.counters().live_mut(key, Instant::now()) {
            *n = n.saturating_sub(1);
        }
        Ok(())
    }

    async fn user(&self, user: &str) -> StoreResult<UserRecord> {
        let user = user.to_owned();
        self.blocking(move |db| read_user(db, &user)).await
    }

    async fn set_pending_totp(&self, user: &str, record: TotpRecord) -> StoreResult<bool> {
        self.update(user, move |r| r.begin_enrollment(record)).await
    }

    async fn confirm_totp(&self, user: &str, step: u64, recovery_hashes: Vec<String>) -> StoreResult<bool> {
        self.update(user, move |r| r.confirm_totp(step, recovery_hashes)).await
    }

    async fn use_totp_step(&self, user: &str, step: u64) -> StoreResult<bool> {
        self.update(user, move |r| r.use_totp_step(step)).await
    }

    async fn use_recovery_code(&self, user: &str, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_owned();
        self.update(user, move |r| r.use_recovery_code(&hash)).await
    }

    async fn set_recovery_codes(&self, user: &str, hashes: Vec<String>) -> StoreResult<()> {
        self.update(user, move |r| r.recovery = hashes).await
    }

    async fn record_failure(&self, user: &str, max_failures: u32, lock: Lock) -> StoreResult<FailureOutcome> {
        let outcome = self.update(user, move |r| r.fail(max_failures, lock)).await?;
        if outcome.locked_now {
            self.publish(Change::Locked { user: user.to_owned() });
        }
        Ok(outcome)
    }

    async fn reserve_guess(&self, user: &str, max_failures: u32, lock: Lock) -> StoreResult<bool> {
        let reservation = self.update(user, move |r| r.reserve_guess(max_failures, lock)).await?;
        if reservation == Reservation::LockedNow {
            self.publish(Change::Locked { user: user.to_owned() });
        }
        Ok(reservation.granted())
    }

    async fn settle_failure(&self, user: &str, max_failures: u32, lock: Lock) -> StoreResult<FailureOutcome> {
        let outcome = self.update(user, move |r| r.settle_failure(max_failures, lock)).await?;
        if outcome.locked_now {
            self.publish(Change::Locked { user: user.to_owned() });
        }
        Ok(outcome)
    }

    async fn release_guess(&self, user: &str) -> StoreResult<()> {
        self.update(user, UserRecord::release_guess).await
    }

    async fn reset_failures(&self, user: &str) -> StoreResult<()> {
        self.update(user, |r| r.failures = 0).await
    }

    async fn unlock(&self, user: &str) -> StoreResult<bool> {
        let was_locked = self.update(user, UserRecord::unlock).await?;
        if was_locked {
            self.publish(Change::Unlocked { user: user.to_owned() });
        }
        Ok(was_locked)
    }

    async fn locked(&self, now: u64) -> StoreResult<Vec<(String, Lock)>> {
        self.blocking(move |db| {
            scan_users(db, |name, r| if r.is_locked(now) { r.lock.map(|l| (name, l)) } else { None })
        })
        .await
    }

    async fn revoke_totp(&self, user: &str, at: u64) -> StoreResult<()> {
        let not_before = self.update(user, move |r| r.revoke_totp(at)).await?;
        self.publish(Change::SessionsNotBefore { user: user.to_owned(), at: not_before });
        Ok(())
    }

    async fn sign_out_everywhere(&self, user: &str, at: u64) -> StoreResult<u64> {
        let not_before = self.update(user, move |r| r.sign_out_everywhere(at)).await?;
        self.publish(Change::SessionsNotBefore { user: user.to_owned(), at: not_before });
        Ok(not_before)
    }

    async fn set_invitation(&self, user: &str, invitation: Option<Invitation>) -> StoreResult<()> {
        self.update(user, move |r| r.invitation = invitation.map(Box::new)).await
    }

    async fn try_invitation(&self, user: &str, code_hash: &str, now: u64) -> StoreResult<InvitationTry> {
        let code_hash = code_hash.to_owned();
        self.update(user, move |r| r.try_invitation(&code_hash, now)).await
    }

    async fn settle_invitation(&self, user: &str, code_hash: &str, used_at: Option<u64>) -> StoreResult<()> {
        let code_hash = code_hash.to_owned();
        self.update(user, move |r| r.settle_invitation(&code_hash, used_at)).await
    }

    async fn revoke_session(&self, id: &str, until: u64) -> StoreResult<()> {
        let n = self.revocations_written.fetch_add(1, Ordering::Relaxed);
        let sweep = n.is_multiple_of(SWEEP_EVERY_REVOCATIONS);
        let owned = id.to_owned();
        self.blocking(move |db| write_revoked_session(db, &owned, until, sweep)).await?;
        self.publish(Change::SessionRevoked { id: id.to_owned(), until });
        Ok(())
    }

    async fn revocations(&self) -> StoreResult<Revocations> {
        let now = unix_now();
        self.blocking(move |db| read_revocations(db, now)).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    async fn device_certs(&self) -> StoreResult<Vec<DeviceCert>> {
        self.blocking(|db| {
            let tx = db.begin_read().map_err(unavailable)?;
            read_device_certs(&tx.open_table(DEVICE_CERTS).map_err(unavailable)?)
        })
        .await
    }

    async fn put_device_cert(
        &self,
        cert: DeviceCert,
        contracted: u32,
        now: u64,
    ) -> StoreResult<Result<(), QuotaError>> {
        let rule = move |certs: &[DeviceCert]| quota::check_issue(certs, &cert, contracted, now).map(|()| cert);
        let out = self.blocking(move |db| write_device_cert(db, rule)).await?;
        Ok(out.map(|cert| self.publish(Change::DeviceCert(cert))))
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
        let out = self.blocking(move |db| write_device_cert(db, rule)).await?;
        if let Ok(cert) = &out {
            self.publish(Change::DeviceCert(cert.clone()));
        }
        Ok(out)
    }

    async fn export(&self) -> StoreResult<Vec<Exported>> {
        let now = unix_now();
        self.blocking(move |db| {
            let mut out = scan_users(db, |user, record| Some(Exported::User { user, record }))?;
            let tx = db.begin_read().map_err(unavailable)?;
            let table = tx.open_table(REVOKED_SESSIONS).map_err(unavailable)?;
            for entry in table.iter().map_err(unavailable)? {
                let (id, until) = entry.map_err(unavailable)?;
                if until.value() > now {
                    out.push(Exported::RevokedSession { id: id.value().to_owned(), until: until.value() });
                }
            }
            let certs = read_device_certs(&tx.open_table(DEVICE_CERTS).map_err(unavailable)?)?;
            out.extend(certs.into_iter().map(|cert| Exported::DeviceCert { cert }));
            out.extend(read_passes(db, None)?.into_iter().map(|pass| Exported::EntrancePass { pass }));
            Ok(out)
        })
        .await
    }

    async fn import(&self, items: Vec<Exported>) -> StoreResult<()> {
        self.blocking(move |db| import_all(db, &items)).await?;
        self.publish(Change::Resync);
        Ok(())
    }
}

/// Writes every exported record in one transaction: all or nothing.
fn import_all(db: &Database, items: &[Exported]) -> StoreResult<()> {
    let tx = db.begin_write().map_err(unavailable)?;
    {
        let mut users = tx.open_table(USERS).map_err(unavailable)?;
        let mut revoked = tx.open_table(REVOKED_SESSIONS).map_err(unavailable)?;
        let mut certs = tx.open_table(DEVICE_CERTS).map_err(unavailable)?;
        let mut passes = tx.open_table(PASSES).map_err(unavailable)?;
        for item in items {
            match item {
                Exported::User { user, record } => {
                    users.insert(user.as_str(), encode(record).as_slice()).map_err(unavailable)?;
                }
                Exported::RevokedSession { id, until } => {
                    revoked.insert(id.as_str(), *until).map_err(unavailable)?;
                }
                Exported::DeviceCert { cert } => {
                    certs.insert(cert.serial.as_str(), json_bytes(cert).as_slice()).map_err(unavailable)?;
                }
                Exported::EntrancePass { pass } => {
                    passes.insert(pass.id.as_str(), pass_bytes(pass).as_slice()).map_err(unavailable)?;
                }
            }
        }
    }
    tx.commit().map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiring_hides_and_sweeps_dead_entries() {
        let start = Instant::now();
        let mut map = Expiring::default();
        map.insert("old", 1u64, start + Duration::from_secs(1), start);
        let later = start + Duration::from_secs(2);
        assert_eq!(map.live("old", later), None);
        assert_eq!(map.take("old", later), None, "take must not return an expired value");

        map.insert("dead", 1, start + Duration::from_secs(1), start);
        for i in 0..SWEEP_EVERY_WRITES {
            map.insert(&format!("k{i}"), 2, later + Duration::from_secs(60), later);
        }
        assert!(!map.entries.contains_key("dead"), "a sweep drops expired entries");
        assert_eq!(map.live("k0", later), Some(&2));
    }

    #[tokio::test]
    async fn unreadable_record_is_corrupt_and_names_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let tx = store.db.begin_write().unwrap();
        tx.open_table(USERS).unwrap().insert("mallory", b"{not json".as_slice()).unwrap();
        tx.commit().unwrap();

        match store.user("mallory").await {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("mallory"), "{m}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert!(matches!(store.use_totp_step("mallory", 9).await, Err(StoreError::Corrupt(_))));
        assert!(matches!(store.locked(0).await, Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn second_open_of_the_same_file_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let _first = EmbeddedStore::open(dir.path()).unwrap();
        assert!(matches!(EmbeddedStore::open(dir.path()), Err(StoreError::Unavailable(_))));
    }
}
