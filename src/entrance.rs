//! Entrance passes at run time: which pass a request carries (one HMAC and
//! one lookup in the revocation snapshot), issuing one at the end of a login
//! that meets `[entrance_pass] issue_when`, recording uses in batches, and
//! revoking. The cookie format is `identity::pass`; the records live in the
//! store (`Store::put_pass` …).

use crate::auth::Auth;
use crate::config::{Config, EntrancePass};
use crate::identity::cookie::{find_cookie, set_cookie};
use crate::identity::pass::{describe_browser, is_browser, Pass, PassError, PASS_COOKIE};
use crate::store::{Change, PassRecord, StoreError};
use std::net::IpAddr;
use std::sync::Arc;

/// A request's valid pass.
#[derive(Debug, Clone)]
pub struct ValidPass {
    /// Shared with this thread's memo of verified cookies.
    pub pass: Arc<Pass>,
    /// The cookie should be re-issued on this host (and a use recorded).
    pub refresh: bool,
}

thread_local! {
    /// Pass cookies this worker thread has verified (see `identity::memo`).
    static PASS_MEMO: std::cell::RefCell<crate::identity::memo::Memo<Pass>> = Default::default();
}

impl Auth {
    /// The entrance pass a browser's request carries, if it counts now:
    /// `[entrance_pass]` configured, a browser's request (Fetch Metadata),
    /// signed by this service, unexpired and unrevoked. Whose pass it is is
    /// the caller's to compare.
    pub fn pass<'a>(
        &self,
        cfg: &Config,
        headers: &http::HeaderMap,
        cookies: impl Iterator<Item = &'a [u8]>,
    ) -> Option<ValidPass> {
        cfg.entrance_pass.as_ref()?;
        let value = find_cookie(cookies, PASS_COOKIE)?;
        if !is_browser(headers) {
            return None;
        }
        let now = self.clock.now();
        let pass = self.check_pass(value, now).ok()?;
        let refresh = pass.needs_refresh(now);
        Some(ValidPass { pass, refresh })
    }

    /// Verifies a pass cookie's value at `now` (also `portcullis decide --pass`).
    pub fn check_pass(&self, value: &str, now: u64) -> Result<Arc<Pass>, PassError> {
        let revocations = self.revocations.load();
        let keys = self.keys.load();
        // Verified once per value and thread (see `identity::memo`); judged
        // at `now` on every request.
        let pass =
            PASS_MEMO.with_borrow_mut(|memo| memo.get_or_verify(value, &keys, || Pass::verified(value, &keys)))?;
        pass.check(now, |id| revocations.revoked_sessions.contains(id))?;
        // Signed out everywhere since it was issued: void at once, on every
        // instance, before each pass's own revocation arrives.
        if revocations.not_before.get(&pass.user).is_some_and(|&nb| pass.issued_at < nb) {
            return Err(PassError::Revoked);
        }
        Ok(pass)
    }

    /// The `Set-Cookie` re-issuing a pass on this host now, and the use noted
    /// for the next batch written to the store.
    pub fn refreshed_pass_cookie(&self, cfg: &EntrancePass, pass: &Pass) -> String {
        let now = self.clock.now();
        let next = pass.refreshed(now, cfg.renew_on_use);
        if let Ok(mut uses) = self.pass_uses.lock() {
            // One entry per pass, however often a client replays an old cookie.
            uses.insert(pass.id.clone(), now);
        }
        self.pass_cookie(&next)
    }

    /// The `Set-Cookie` of `pass`, lasting as long as it works.
    pub fn pass_cookie(&self, pass: &Pass) -> String {
        let left = pass.expires_at.saturating_sub(self.clock.now());
        set_cookie(PASS_COOKIE, &pass.to_cookie(&self.keys.load()), Some(left))
    }

    /// Issues a pass to `user`'s browser at the end of a login and records
    /// it; the caller has checked `issue_when` and that this is a browser.
    pub async fn issue_pass(
        &self,
        cfg: &EntrancePass,
        user: &str,
        from: IpAddr,
        user_agent: &str,
    ) -> Result<Pass, StoreError> {
        let now = self.clock.now();
        let pass = Pass::new(user, now, cfg.lifetime.as_secs());
        let record = PassRecord {
            id: pass.id.clone(),
            user: user.to_string(),
            issued_at: now,
            issued_from: from.to_canonical().to_string(),
            browser: describe_browser(user_agent),
            last_seen: now,
            expires_at: pass.expires_at,
            revoked: false,
        };
        self.store().put_pass(&record).await?;
        crate::audit!(
            "entrance_pass_issued",
            user = %user,
            pass = %pass.id,
            from = %record.issued_from,
            browser = %record.browser
        );
        Ok(pass)
    }

    /// Writes the uses noted since the last time (every minute, from the
    /// change follower): one store call per batch, never one per request.
    pub async fn flush_pass_uses(&self) {
        let batch: Vec<(String, u64)> = match self.pass_uses.lock() {
            Ok(mut uses) if !uses.is_empty() => std::mem::take(&mut *uses).into_iter().collect(),
            _ => return,
        };
        if let Err(e) = self.store().touch_passes(&batch).await {
            tracing::warn!("entrance-pass uses not recorded ({} dropped): {e}", batch.len());
        }
    }

    /// How long a pass's revocation must be remembered: until it ends, or,
    /// as a pass renewed on use may have been re-issued up to this moment,
    /// one lifetime (its own, as issued) from now.
    fn revoked_until(&self, p: &PassRecord) -> u64 {
        let lifetime = p.expires_at.saturating_sub(p.issued_at);
        p.expires_at.max(self.clock.now().saturating_add(lifetime))
    }

    /// Revokes one pass on every instance; `None` for an unknown id.
    pub async fn revoke_pass(&self, id: &str) -> Result<Option<PassRecord>, StoreError> {
        let Some(record) = self.store().passes(None).await?.into_iter().find(|p| p.id == id) else {
            return Ok(None);
        };
        let until = self.revoked_until(&record);
        let before = self.store().revoke_pass(id, until).await?;
        self.apply_now(&Change::SessionRevoked { id: id.to_string(), until });
        crate::audit!("entrance_pass_revoked", user = %record.user, pass = %id);
        Ok(before)
    }

    /// Revokes every pass of `user` not revoked yet; returns how many.
    pub async fn revoke_passes_of(&self, user: &str) -> Result<usize, StoreError> {
        let mut n = 0;
        let now = self.clock.now();
        for p in self.store().passes(Some(user)).await? {
            // One that ended (and could not have been renewed since) needs no revocation.
            let ended = now >= p.expires_at.max(p.last_seen.saturating_add(p.expires_at.saturating_sub(p.issued_at)));
            if !p.revoked && !ended {
                let until = self.revoked_until(&p);
                self.store().revoke_pass(&p.id, until).await?;
                self.apply_now(&Change::SessionRevoked { id: p.id.clone(), until });
                n += 1;
            }
        }
        if n > 0 {
            crate::audit!("entrance_passes_revoked", user = %user, count = n);
        }
        Ok(n)
    }
}
