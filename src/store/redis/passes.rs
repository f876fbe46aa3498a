//! Entrance passes in Redis: `{p}{passes}`, a hash of pass id → JSON
//! [`PassRecord`] as issued (or imported, or marked revoked), and
//! `{p}{passes}:seen`, a hash of pass id → the latest use recorded (one
//! hash tag, so one slot of a cluster). A batch of
//! touches is one script that only ever raises `passes:seen` entries of
//! known passes, so touches need no read-modify-write of the record and never
//! race a revocation; a read takes the later of the record's `last_seen` and
//! the `passes:seen` entry. A revocation goes through the same path as a
//! session's (`{p}revoked`, [`Change::SessionRevoked`](crate::store::Change)
//! on the feed), then marks the record with a compare-and-set script.

use super::{decode, json, query, unavailable, Keys, Shared, StoreError, StoreResult, WRITE_ROUNDS};
use crate::store::{sort_passes, Exported, PassRecord};
use redis::cmd;
use std::collections::HashMap;

/// KEYS: passes hash, seen hash. ARGV: id, time, id, time, … Raises each
/// known pass's `passes:seen` entry to its time (never lowers it); unknown
/// ids are skipped.
pub(super) const TOUCH_PASSES: &str = r"
for i = 1, #ARGV, 2 do
  local id, at = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', KEYS[1], id) == 1 then
    local seen = tonumber(redis.call('HGET', KEYS[2], id) or '0')
    if tonumber(at) > seen then redis.call('HSET', KEYS[2], id, at) end
  end
end
return 0
";

/// KEYS: passes hash. ARGV: id, the record as read, the new record. Returns
/// 0, writing nothing, when the record is no longer what was read.
pub(super) const REPLACE_PASS: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
";

impl Keys {
    pub(super) fn passes(&self) -> String {
        format!("{}{{passes}}", self.prefix)
    }

    pub(super) fn passes_seen(&self) -> String {
        format!("{}{{passes}}:seen", self.prefix)
    }
}

/// The record with the latest use recorded by a touch, if later.
fn merged(id: &str, stored: &str, seen: Option<u64>) -> StoreResult<PassRecord> {
    let mut pass: PassRecord = decode(&format!("entrance pass {id:?}"), stored)?;
    pass.last_seen = pass.last_seen.max(seen.unwrap_or(0));
    Ok(pass)
}

impl Shared {
    pub(super) async fn put_pass(&self, pass: &PassRecord) -> StoreResult<()> {
        let _: i64 = query(&self.conn, cmd("HSET").arg(self.keys.passes()).arg(&pass.id).arg(json(pass))).await?;
        self.durable(&self.keys.passes()).await
    }

    /// Every pass (of `user`, when given), newest first, `last_seen` merged.
    pub(super) async fn passes(&self, user: Option<&str>) -> StoreResult<Vec<PassRecord>> {
        // One transaction, so records and touches describe the same moment.
        let (records, seen): (HashMap<String, String>, HashMap<String, u64>) = redis::pipe()
            .atomic()
            .cmd("HGETALL")
            .arg(self.keys.passes())
            .cmd("HGETALL")
            .arg(self.keys.passes_seen())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(records.len());
        for (id, stored) in records {
            let pass = merged(&id, &stored, seen.get(&id).copied())?;
            if user.is_none_or(|u| pass.user == u) {
                out.push(pass);
            }
        }
        sort_passes(&mut out);
        Ok(out)
    }

    /// One script call for the whole batch.
    pub(super) async fn touch_passes(&self, seen: &[(String, u64)]) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let mut touch = self.touch_passes.prepare_invoke();
        touch.key(self.keys.passes()).key(self.keys.passes_seen());
        for (id, at) in seen {
            touch.arg(id).arg(*at);
        }
        let _: i64 = touch.invoke_async(&mut self.conn.clone()).await.map_err(unavailable)?;
        Ok(())
    }

    /// The record as stored (for a compare-and-set) and with `last_seen` merged.
    async fn pass(&self, id: &str) -> StoreResult<Option<(String, PassRecord)>> {
        let (stored, seen): (Option<String>, Option<u64>) = redis::pipe()
            .atomic()
            .cmd("HGET")
            .arg(self.keys.passes())
            .arg(id)
            .cmd("HGET")
            .arg(self.keys.passes_seen())
            .arg(id)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        stored.map(|s| merged(id, &s, seen).map(|pass| (s, pass))).transpose()
    }

    pub(super) async fn revoke_pass(&self, id: &str, until: u64) -> StoreResult<Option<PassRecord>> {
        let Some((mut stored, before)) = self.pass(id).await? else {
            return Ok(None);
        };
        // Voided first, then marked: a failure in between leaves a pass that
        // no longer works but is not shown revoked yet (a retry finishes it),
        // never one shown revoked that still works.
        self.revoke_session(id, until).await?;
        let mut conn = self.conn.clone();
        for _ in 0..WRITE_ROUNDS {
            let mut record: PassRecord = decode(&format!("entrance pass {id:?}"), &stored)?;
            if record.revoked {
                return Ok(Some(before));
            }
            // The record's own `last_seen` stays; touches live in `passes:seen`.
            record.revoked = true;
            let written: i64 = self
                .replace_pass
                .key(self.keys.passes())
                .arg(id)
                .arg(&stored)
                .arg(json(&record))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if written == 1 {
                self.durable(&self.keys.passes()).await?;
                return Ok(Some(before));
            }
            match query::<Option<String>>(&self.conn, cmd("HGET").arg(self.keys.passes()).arg(id)).await? {
                Some(now) => stored = now,
                // Removed behind the store's back: voided all the same.
                None => return Ok(Some(before)),
            }
        }
        Err(StoreError::Unavailable(format!("redis: entrance pass kept changing under {WRITE_ROUNDS} writers")))
    }

    /// Adds an exported pass to an import's MULTI/EXEC: the record replaces
    /// any stored one, `last_seen` included.
    pub(super) fn import_pass(&self, pipes: &mut super::ImportPipes, pass: &PassRecord) {
        let pipe = pipes.for_key(&self.keys.passes());
        pipe.cmd("HSET").arg(self.keys.passes()).arg(&pass.id).arg(json(pass)).ignore();
        pipe.cmd("HDEL").arg(self.keys.passes_seen()).arg(&pass.id).ignore();
    }

    pub(super) async fn export_passes(&self, out: &mut Vec<Exported>) -> StoreResult<()> {
        out.extend(self.passes(None).await?.into_iter().map(|pass| Exported::EntrancePass { pass }));
        Ok(())
    }
}
