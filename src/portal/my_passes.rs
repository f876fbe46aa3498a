//! The signed-in user's entrance passes on the dashboard, and revoking one
//! of them there (`POST /.portcullis/passes/revoke`, with the form's CSRF
//! token). The list is read from the store when the page is shown; the
//! revocation reaches every instance through the change feed.

use super::prg::{self, Notice};
use super::{Portal, Request};
use crate::challenge::cooldown::LocalTime;
use crate::challenge::pages::PassRow;
use crate::identity::cookie::clear_cookie;
use crate::identity::pass::PASS_COOKIE;
use crate::proxy::respond::Reply;

impl Portal<'_> {
    /// `user`'s passes that still work, newest first; `None` without
    /// `[entrance_pass]` (no such section on the dashboard), `Err` when the
    /// store cannot be read.
    pub(super) async fn pass_rows(&self, user: &str) -> Result<Option<Vec<PassRow>>, crate::store::StoreError> {
        if self.config.entrance_pass.is_none() {
            return Ok(None);
        }
        let (now, offset) = (self.auth.clock.now(), self.config.totp.utc_offset);
        let local = |at: u64| LocalTime(at, offset).to_string();
        let mine = self.pass.map(|p| p.id.as_str());
        let renew = self.config.entrance_pass.as_ref().is_some_and(|e| e.renew_on_use);
        let rows = self
            .auth
            .store()
            .passes(Some(user))
            .await?
            .into_iter()
            .filter(|p| !p.revoked && p.works_until(renew) > now);
        Ok(Some(
            rows.map(|p| PassRow {
                this_browser: mine == Some(p.id.as_str()),
                issued: local(p.issued_at),
                last_seen: local(p.last_seen),
                id: p.id,
                browser: p.browser,
                issued_from: p.issued_from,
            })
            .collect(),
        ))
    }

    /// Revokes one of the signed-in user's passes (never another user's).
    pub(super) async fn revoke_own_pass(&self, req: &Request) -> Reply {
        let Some(s) = self.session else {
            return Reply::redirect(303, prg::here(req, "/.portcullis/login", &[]));
        };
        let unavailable = || Reply::redirect(303, prg::notice_url(req, Notice::Unavailable));
        let id = req.field("id").unwrap_or_default();
        let own = match self.auth.store().passes(Some(&s.session.user)).await {
            Ok(passes) => passes.iter().any(|p| p.id == id),
            Err(_) => return unavailable(),
        };
        // Not one of the user's (or gone already): nothing to do but show the list.
        if own && self.auth.revoke_pass(id).await.is_err() {
            return unavailable();
        }
        let reply = Reply::redirect(303, prg::here(req, "/.portcullis/", &[]));
        if own && self.pass.is_some_and(|p| p.id == id) {
            reply.with_header("set-cookie", clear_cookie(PASS_COOKIE))
        } else {
            reply
        }
    }
}
