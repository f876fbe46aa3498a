//! New recovery codes between the POST that made them (enrollment's confirm
//! step, "Create new recovery codes") and the GET page that shows them, so a
//! refresh shows them again instead of sending the form again.
//!
//! They wait in the store as challenge state of the browser's flow, sealed
//! with the secrets key (bound to the flow id), for ten minutes at most; the
//! page, its text-file download and its Copy button read them from there.
//! Only the browser whose flow cookie made them can see them.

use super::{prg, Portal, Request};
use crate::challenge::pages::{Page, Who};
use crate::proxy::respond::{Reply, CODES_PAGE_CSP};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const PAGE: &str = "/.portcullis/recovery-codes";
pub const FILE: &str = "/.portcullis/recovery-codes.txt";
pub const SCRIPT: &str = "/.portcullis/static/recovery-codes.js";
/// As long as a handoff ticket on the page's Continue button lasts.
const KEEP_FOR: Duration = Duration::from_secs(10 * 60);

#[derive(Serialize, Deserialize)]
struct Shown {
    user: String,
    codes: Vec<String>,
    /// Where Continue goes: the app, a handoff, or the dashboard.
    next: String,
}

fn key(flow: &str) -> String {
    format!("shown-codes:{flow}")
}

/// The Copy button's script.
pub fn script() -> Reply {
    Reply::asset("text/javascript; charset=utf-8", include_bytes!("../../assets/recovery-codes.js"), CODES_PAGE_CSP)
}

impl Portal<'_> {
    /// Keeps `codes` for this browser's codes page; the redirect to it.
    pub(super) async fn show_codes(&self, req: &Request, user: &str, codes: Vec<String>, next: String) -> Reply {
        let shown = Shown { user: user.to_string(), codes, next };
        let sealed = self.auth.seal(&serde_json::to_vec(&shown).unwrap_or_default(), key(&req.flow).as_bytes());
        match self.auth.store().put_challenge(&key(&req.flow), &sealed, KEEP_FOR).await {
            Ok(()) => Reply::redirect(303, prg::here(req, PAGE, &[])),
            Err(e) => {
                // The codes are made (the old ones are void): say so plainly.
                tracing::warn!("new recovery codes could not be kept for their page: {e}");
                Reply::redirect(303, prg::notice_url(req, prg::Notice::Unavailable))
            }
        }
    }

    async fn shown(&self, req: &Request) -> Option<Shown> {
        let sealed = self.auth.store().get_challenge(&key(&req.flow)).await.ok()??;
        let plain = self.auth.unseal(&sealed, key(&req.flow).as_bytes())?;
        serde_json::from_slice(&plain).ok()
    }

    /// `GET /.portcullis/recovery-codes`.
    pub(super) async fn codes_page(&self, req: &Request) -> Reply {
        let Some(s) = self.shown(req).await else {
            return Reply::redirect(303, prg::here(req, "/.portcullis/", &[]));
        };
        let page = Page::RecoveryCodes { codes: &s.codes, continue_href: &s.next };
        self.page_for(req, page, Who::SignedIn(&s.user)).with_csp(CODES_PAGE_CSP)
    }

    /// `GET /.portcullis/recovery-codes.txt`: the same codes as a file.
    pub(super) async fn codes_file(&self, req: &Request) -> Reply {
        let Some(s) = self.shown(req).await else {
            return Reply::redirect(303, prg::here(req, "/.portcullis/", &[]));
        };
        let app = &self.config.app(self.app).display_name;
        let title = crate::challenge::pages::text(req.lang, crate::challenge::pages::Text::RecoveryCodesTitle);
        let mut body = format!("{title}: {app}, {}\n\n", s.user);
        for code in &s.codes {
            body.push_str(code);
            body.push('\n');
        }
        let name: String =
            s.user.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        Reply {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            location: None,
            named: vec![],
            extra: vec![("content-disposition", format!("attachment; filename=\"recovery-codes-{name}.txt\""))],
        }
    }
}
