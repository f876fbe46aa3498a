//! User records in Redis, spread over [`BUCKETS`] buckets by the first hex
//! digit of the user's HMAC. A bucket is one hash tag, `{p}{u7}`, holding
//! three hashes: `{p}{u7}:users` (HMAC → JSON `{"user", "record"}`),
//! `{p}{u7}:not_before` (HMAC → `{"user", "at"}`) and `{p}{u7}:locks`
//! (HMAC → `{"user", "lock"}`). A user's record and its index entries share
//! one slot, so the write script that checks, writes and indexes them runs
//! on one node of a cluster; the buckets spread users over the cluster.
//! Reading every user (revocations, locks, export) reads the 16 buckets.

use super::{
    decode, json, query, unavailable, Change, Keys, Shared, StoreError, StoreResult, UserRecord, WRITE_ROUNDS,
};
use crate::store::{Exported, Lock, Revocations};
use redis::cmd;
use serde::{Deserialize, Serialize};

/// Buckets of users: one per hex digit.
pub(super) const BUCKETS: [char; 16] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'];

impl Keys {
    /// `{p}{u<b>}:<what>` for the bucket `b`.
    pub(super) fn bucket(&self, b: char, what: &str) -> String {
        format!("{}{{u{b}}}:{what}", self.prefix)
    }

    /// The bucket's key `what` of the user whose HMAC is `field`.
    pub(super) fn of_user(&self, field: &str, what: &str) -> String {
        self.bucket(field.chars().next().unwrap_or('0'), what)
    }
}

/// A user's record with its plain name.
#[derive(Serialize, Deserialize)]
struct StoredUser {
    user: String,
    record: UserRecord,
}

/// A `not_before` entry: the snapshot is rebuilt from these with plain names.
#[derive(Serialize, Deserialize)]
struct NotBeforeEntry {
    user: String,
    at: u64,
}

/// A `locks` entry, for `locked()` without reading every record.
#[derive(Serialize, Deserialize)]
struct LockEntry {
    user: String,
    lock: Lock,
}

/// A user's record and index entries as written; empty means "delete the entry".
pub(super) struct UserWrite {
    record: String,
    not_before: String,
    lock: String,
}

impl UserWrite {
    pub(super) fn new(user: &str, record: &UserRecord) -> UserWrite {
        let stored = StoredUser { user: user.to_owned(), record: record.clone() };
        let not_before = (record.sessions_not_before > 0)
            .then(|| json(&NotBeforeEntry { user: user.to_owned(), at: record.sessions_not_before }));
        let lock = record.lock.clone().map(|lock| json(&LockEntry { user: user.to_owned(), lock }));
        UserWrite { record: json(&stored), not_before: not_before.unwrap_or_default(), lock: lock.unwrap_or_default() }
    }
}

/// KEYS: users, not_before and locks hashes of the bucket. ARGV: the record
/// as read ("" = none), the new record ("" = unchanged), the user's field,
/// the not_before and lock entries ("" = remove), the channel, the change
/// ("" = none). Returns 0, writing nothing, when the record is no longer
/// what was read.
pub(super) const WRITE_USER: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[3]) or ''
if current ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[2])
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) else redis.call('HDEL', KEYS[2], ARGV[3]) end
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], ARGV[3], ARGV[5]) else redis.call('HDEL', KEYS[3], ARGV[3]) end
end
if ARGV[7] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[7]) end
return 1
";

impl Shared {
    pub(super) async fn read_user(&self, field: &str, user: &str) -> StoreResult<(Option<String>, UserRecord)> {
        let stored: Option<String> =
            query(&self.conn, cmd("HGET").arg(self.keys.of_user(field, "users")).arg(field)).await?;
        let record = match &stored {
            Some(json) => decode_user(user, json)?,
            None => UserRecord::default(),
        };
        Ok((stored, record))
    }

    /// Read, change here, write if still unchanged (see the module docs of `redis`).
    pub(super) async fn update<T, F>(&self, user: &str, mut change: F) -> StoreResult<T>
    where
        F: FnMut(&mut UserRecord) -> (T, Option<Change>),
    {
        let field = self.keys.hashed(user);
        let users = self.keys.of_user(&field, "users");
        let mut conn = self.conn.clone();
        for _ in 0..WRITE_ROUNDS {
            let (stored, before) = self.read_user(&field, user).await?;
            let mut record = before.clone();
            let (out, published) = change(&mut record);
            // A refused step (replayed code, unknown user) writes nothing.
            if record == before && published.is_none() {
                return Ok(out);
            }
            let write = (record != before).then(|| UserWrite::new(user, &record));
            let written: i64 = self
                .write_user
                .key(&users)
                .key(self.keys.of_user(&field, "not_before"))
                .key(self.keys.of_user(&field, "locks"))
                .arg(stored.as_deref().unwrap_or(""))
                .arg(write.as_ref().map_or("", |w| w.record.as_str()))
                .arg(&field)
                .arg(write.as_ref().map_or("", |w| w.not_before.as_str()))
                .arg(write.as_ref().map_or("", |w| w.lock.as_str()))
                .arg(self.keys.changes())
                .arg(published.map(|c| json(&c)).unwrap_or_default())
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if written == 1 {
                if write.is_some() {
                    self.durable(&users).await?;
                }
                return Ok(out);
            }
        }
        Err(StoreError::Unavailable(format!("redis: record kept changing under {WRITE_ROUNDS} concurrent writers")))
    }

    /// The values of one hash in every bucket (16 reads, in parallel).
    async fn every_bucket(&self, what: &str) -> StoreResult<Vec<String>> {
        let reads = BUCKETS.iter().map(|b| {
            let key = self.keys.bucket(*b, what);
            async move { query::<Vec<String>>(&self.conn, cmd("HVALS").arg(key)).await }
        });
        Ok(futures_util::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// Every user's `sessions_not_before`, into `out`.
    pub(super) async fn not_before(&self, out: &mut Revocations) -> StoreResult<()> {
        for json in self.every_bucket("not_before").await? {
            let e: NotBeforeEntry = decode("a not_before entry", &json)?;
            out.not_before.insert(e.user, e.at);
        }
        Ok(())
    }

    /// Users whose lock still holds at `now`.
    pub(super) async fn locked(&self, now: u64) -> StoreResult<Vec<(String, Lock)>> {
        let mut out = Vec::new();
        for json in self.every_bucket("locks").await? {
            let e: LockEntry = decode("a lock entry", &json)?;
            if e.lock.until.is_none_or(|until| now < until) {
                out.push((e.user, e.lock));
            }
        }
        Ok(out)
    }

    pub(super) async fn export_users(&self, out: &mut Vec<Exported>) -> StoreResult<()> {
        for json in self.every_bucket("users").await? {
            let s: StoredUser = decode("a user record", &json)?;
            out.push(Exported::User { user: s.user, record: s.record });
        }
        Ok(())
    }

    /// Adds an exported user to its bucket's import transaction; returns the bucket.
    pub(super) fn import_user(&self, pipes: &mut super::ImportPipes, user: &str, record: &UserRecord) {
        let field = self.keys.hashed(user);
        let w = UserWrite::new(user, record);
        let users = self.keys.of_user(&field, "users");
        let pipe = pipes.for_key(&users);
        pipe.cmd("HSET").arg(&users).arg(&field).arg(&w.record).ignore();
        index_entry(pipe, &self.keys.of_user(&field, "not_before"), &field, &w.not_before);
        index_entry(pipe, &self.keys.of_user(&field, "locks"), &field, &w.lock);
    }
}

fn index_entry(pipe: &mut redis::Pipeline, hash: &str, field: &str, entry: &str) {
    if entry.is_empty() {
        pipe.cmd("HDEL").arg(hash).arg(field).ignore();
    } else {
        pipe.cmd("HSET").arg(hash).arg(field).arg(entry).ignore();
    }
}

fn decode_user(user: &str, json: &str) -> StoreResult<UserRecord> {
    let stored: StoredUser = decode(&format!("record of user {user:?}"), json)?;
    // Two names with one HMAC would be a broken key, not a coincidence.
    if stored.user != user {
        return Err(StoreError::Corrupt(format!("record of user {user:?} names {:?}", stored.user)));
    }
    Ok(stored.record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_and_its_index_entries_share_one_hash_tag() {
        let keys = Keys::new("p:", &[7; 32]);
        let field = keys.hashed("alice");
        let tag = |k: &str| k[k.find('{').unwrap()..=k.find('}').unwrap()].to_string();
        let users = keys.of_user(&field, "users");
        assert!(!users.contains("alice"));
        assert_eq!(tag(&users), format!("{{u{}}}", &field[..1]));
        assert_eq!(tag(&users), tag(&keys.of_user(&field, "not_before")));
        assert_eq!(tag(&users), tag(&keys.of_user(&field, "locks")));
        let tags: std::collections::HashSet<String> = BUCKETS.iter().map(|b| tag(&keys.bucket(*b, "users"))).collect();
        assert_eq!(tags.len(), 16, "users spread over 16 hash tags");
    }

    #[test]
    fn index_entries_follow_the_record() {
        let mut record = UserRecord::default();
        let w = UserWrite::new("bob", &record);
        assert_eq!((w.not_before.as_str(), w.lock.as_str()), ("", ""), "nothing to index");
        record.sessions_not_before = 9;
        record.lock = Some(Lock { at: 1, until: None, reason: "r".into() });
        let w = UserWrite::new("bob", &record);
        assert_eq!(w.not_before, r#"{"user":"bob","at":9}"#);
        assert!(w.lock.starts_with(r#"{"user":"bob","lock":{"at":1"#), "{}", w.lock);
        assert_eq!(decode_user("bob", &w.record).unwrap(), record);
        assert!(matches!(decode_user("eve", &w.record), Err(StoreError::Corrupt(_))));
    }
}
