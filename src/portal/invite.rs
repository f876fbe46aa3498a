//! The page an emailed invitation's link opens (`/.portcullis/invite?u=…&code=…`):
//! the password and the activation PIN, then the normal enrollment.
//!
//! Each PIN try is counted in the store before the PIN is checked (three
//! void the invitation, however many arrive at once). A right PIN lets the
//! password step run with the `invitation` fact true and a single-use
//! enrollment code, so the enrollment follows even where `enroll_when` would
//! not allow it from this address; the link is spent when the password is
//! right too. A wrong password leaves the invitation as it was (the password
//! counts toward the user's lockout like any sign-in).

use super::prg;
use super::{Portal, Request};
use crate::challenge::login::Step;
use crate::challenge::pages::{Page, Text};
use crate::invitations::{code_hash, verify_pin, PATH};
use crate::proxy::respond::Reply;
use crate::store::invitation::MAX_PIN_TRIES;
use crate::store::{InvitationKind, InvitationTry};
use std::time::Duration;

/// How long the enrollment a right PIN opens may take.
const ENROLL_WITHIN: Duration = Duration::from_secs(10 * 60);

fn see_other(location: String) -> Reply {
    Reply::redirect(303, location)
}

impl Portal<'_> {
    /// The link and what it finds, without counting anything.
    pub(super) async fn invite_page(&self, req: &Request) -> Reply {
        let (user, code) = (req.field("u").unwrap_or(""), req.field("code").unwrap_or(""));
        let rec = match self.config.users.get(user) {
            Some(_) => match self.auth.store().user(user).await {
                Ok(r) => Some(r),
                Err(_) => return self.page(req, Page::Unavailable),
            },
            None => None,
        };
        let inv = rec.and_then(|r| r.invitation).filter(|i| !code.is_empty() && i.code_hash == code_hash(code));
        let Some(inv) = inv else { return self.page(req, Page::Error { message: Text::InviteUnknown }) };
        match inv.state(self.auth.clock.now()) {
            "used" => return self.page(req, Page::Error { message: Text::InviteUsed }),
            "voided" => return self.page(req, Page::Error { message: Text::InviteVoided }),
            "expired" => return self.page(req, Page::Error { message: Text::InviteExpired }),
            _ => {}
        }
        let (error, tries_left) = match req.field("error") {
            Some("pin") => (Some(Text::ErrWrongPin), Some(MAX_PIN_TRIES.saturating_sub(inv.tries))),
            Some("credentials") => (Some(Text::ErrBadCredentials), None),
            Some("missing") => (Some(Text::ErrMissingCredentials), None),
            Some("form") => (Some(Text::ErrBadForm), None),
            _ => (None, None),
        };
        self.page(req, Page::Invitation { username: user, code, error, tries_left })
    }

    pub(super) async fn invite_post(&self, req: &Request) -> Reply {
        let (user, code) = (req.field("u").unwrap_or(""), req.field("code").unwrap_or(""));
        let back = |error: &str| see_other(prg::here(req, PATH, &[("u", user), ("code", code), ("error", error)]));
        let (password, pin) = (req.field("password").unwrap_or(""), req.field("pin").unwrap_or(""));
        if password.is_empty() || pin.is_empty() {
            return back("missing");
        }
        if self.config.users.get(user).is_none() {
            return self.page(req, Page::Error { message: Text::InviteUnknown });
        }
        let now = self.auth.clock.now();
        let hash = code_hash(code);
        let inv = match self.auth.store().try_invitation(user, &hash, now).await {
            Err(_) => return self.page(req, Page::Unavailable),
            Ok(InvitationTry::Counted(inv)) => inv,
            // The page says why (used, voided, expired, unknown).
            Ok(_) => return back(""),
        };
        if !verify_pin(inv.pin_hash.clone(), pin.to_string()).await {
            let voided = inv.tries >= MAX_PIN_TRIES;
            crate::audit!("invitation_pin_failed", user = %user, client_ip = %self.client_ip, tries = inv.tries, voided);
            return back(if voided { "" } else { "pin" });
        }
        if self.auth.store().settle_invitation(user, &hash, None).await.is_err() {
            return self.page(req, Page::Unavailable);
        }
        // Both channels proven (the mailbox's link, the PIN): the password step,
        // with the invitation's facts and a single-use enrollment code.
        let enroll = match self.auth.login.make_enroll_link(user, ENROLL_WITHIN).await {
            Ok(c) => c,
            Err(_) => return self.page(req, Page::Unavailable),
        };
        let facts = crate::policy::expr::Facts { invitation: true, ..self.facts_for(user) };
        let login = &self.auth.login;
        let step = login
            .password(self.config, self.app, &facts, self.client_ip, &req.flow, user, password, Some(&enroll), "")
            .await;
        match step {
            Step::WrongCredentials => return back("credentials"),
            Step::NeedEnroll | Step::NeedTotp | Step::NeedPush | Step::Done { .. } => {
                if self.auth.store().settle_invitation(user, &hash, Some(now)).await.is_err() {
                    return self.page(req, Page::Unavailable);
                }
                crate::audit!("invitation_used", user = %user, client_ip = %self.client_ip, kind = ?inv.kind);
            }
            _ => {}
        }
        match (inv.kind, &step) {
            (InvitationKind::Approver, Step::NeedEnroll | Step::NeedTotp | Step::NeedPush | Step::Done { .. }) => {
                match crate::push::approver::make_enroll_code(self.auth.store().as_ref(), user).await {
                    Ok(code) => see_other(format!("/.portcullis/approver/#enroll={code}")),
                    Err(_) => self.page(req, Page::Unavailable),
                }
            }
            _ => self.login_step(req, step).await,
        }
    }
}
