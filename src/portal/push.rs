//! The portal's side of push approval (see `crate::push`): the browser's
//! push-wait page and its JSON twin, the user's approver devices page, the
//! approver web app's files, and the approver API the devices call (signed
//! with their keys), including its server-sent event stream.

use super::prg::{self, Notice};
use super::{Portal, Request};
use crate::challenge::cooldown::LocalTime;
use crate::challenge::login::{Stage, Step};
use crate::challenge::pages::{Page, Text, Who};
use crate::proxy::respond::{Reply, APPROVER_CSP, PUSH_PAGE_CSP};
use crate::push::approver::{self, Approver, ApproverError};
use crate::push::request::{self, Answer, DecideError, Outcome, PushRequest, Refusal};
use crate::store::Change;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use serde_json::{json, Value};
use std::time::Duration;

/// How long one wait (a long poll, or the page's "continue") is held.
const WAIT: Duration = Duration::from_secs(25);
/// How long one event stream to an approver app lasts before it reconnects.
const STREAM_FOR: Duration = Duration::from_secs(10 * 60);
const KEEP_ALIVE: Duration = Duration::from_secs(20);

pub const EVENTS_PATH: &str = "/.portcullis/api/approver/events";

/// The approver app's files: path under `/.portcullis/approver/`, type, bytes.
const APP_FILES: &[(&str, &str, &[u8])] = &[
    ("", "text/html; charset=utf-8", include_bytes!("../../assets/approver/index.html")),
    ("index.html", "text/html; charset=utf-8", include_bytes!("../../assets/approver/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/approver/app.js")),
    ("sw.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/approver/sw.js")),
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../assets/approver/app.css")),
    ("manifest.webmanifest", "application/manifest+json", include_bytes!("../../assets/approver/manifest.webmanifest")),
    ("icon.svg", "image/svg+xml", include_bytes!("../../assets/approver/icon.svg")),
];

/// The approver app's file at `path`, if it is one.
pub fn app_file(path: &str) -> Option<Reply> {
    let name = path.strip_prefix("/.portcullis/approver/")?;
    let (_, content_type, body) = APP_FILES.iter().find(|(n, _, _)| *n == name)?;
    let reply = Reply::asset(content_type, body, APPROVER_CSP);
    Some(if name == "sw.js" {
        reply.with_header("service-worker-allowed", "/.portcullis/approver/".into())
    } else {
        reply
    })
}

/// The push-wait page's script.
pub fn wait_script() -> Reply {
    Reply::asset("text/javascript; charset=utf-8", include_bytes!("../../assets/push-wait.js"), PUSH_PAGE_CSP)
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, &json!({"error": code, "message": message}))
}

fn approver_error(e: ApproverError) -> Reply {
    let (status, code) = match e {
        ApproverError::BadLink => (404, "bad_link"),
        ApproverError::BadKey | ApproverError::BadName => (400, "bad_request"),
        ApproverError::TooMany => (409, "too_many_devices"),
        ApproverError::UnknownDevice => (403, "unknown_device"),
        ApproverError::BadSignature => (403, "bad_signature"),
        ApproverError::Stale => (403, "stale_request"),
        ApproverError::Store(_) => (503, "temporarily_unavailable"),
    };
    error(status, code, &e.to_string())
}

/// The waiting browser's view of its request.
enum Waiting {
    /// A request is out: the number to show.
    Number(PushRequest),
    /// No request is out, and why.
    Notice(Text, Option<u64>),
}

impl Portal<'_> {
    fn local(&self, at: u64) -> String {
        LocalTime(at, self.config.totp.utc_offset).to_string()
    }

    /// The request this browser's login waits on: the one already out, or a
    /// new one (unless `fresh_only` is false and none is out).
    async fn waiting(&self, req: &Request, start: bool) -> Result<(Waiting, bool), Step> {
        let attempt = self.auth.login.push_attempt(&req.flow).await?;
        let has_totp = attempt.stage == Stage::Totp;
        let now = self.auth.clock.now();
        if let Ok(Some(r)) = request::of_flow(self.auth, &req.flow).await {
            let for_this_login = r.user == attempt.user;
            if for_this_login && r.expires_at > now && matches!(request::outcome(self.auth, &r.id).await, Ok(None)) {
                return Ok((Waiting::Number(r), has_totp));
            }
        }
        if !start {
            return Ok((Waiting::Notice(Text::PushExpired, None), has_totp));
        }
        let user = self.config.users.get(&attempt.user).ok_or(Step::NoAttempt)?;
        let context = request::Context {
            user: &attempt.user,
            app: &attempt.app,
            host: &req.host,
            flow: &req.flow,
            from: self.client_ip,
            user_agent: &req.user_agent,
            number_matching: self.config.groups[user.policy_group].push_number_matching,
        };
        Ok(match request::start(self.auth, self.config, context).await {
            Ok(r) => (Waiting::Number(r), has_totp),
            Err(Refusal::NoDevice) => (Waiting::Notice(Text::PushNoDevice, None), has_totp),
            Err(Refusal::TooMany { retry_at }) => (Waiting::Notice(Text::PushTooMany, Some(retry_at)), has_totp),
            Err(Refusal::Blocked { until }) => (Waiting::Notice(Text::PushBlocked, Some(until)), has_totp),
            Err(Refusal::Unavailable) => return Err(Step::Unavailable),
        })
    }

    async fn push_page(&self, req: &Request, waiting: Waiting, has_totp: bool) -> Reply {
        let (number, notice, at) = match waiting {
            Waiting::Number(r) => (Some(r.number), None, None),
            Waiting::Notice(t, at) => (None, Some(t), at),
        };
        let retry_at = at.map(|t| self.local(t)).unwrap_or_default();
        let user = self.auth.login.push_attempt(&req.flow).await.ok().map(|a| a.user);
        let who = user.as_deref().map_or(Who::Nobody, Who::SigningIn);
        let page = Page::PushWait { number, notice, retry_at: &retry_at, has_totp };
        self.page_for(req, page, who).with_csp(PUSH_PAGE_CSP)
    }

    /// `GET /.portcullis/push`: the number, or why no push went out; with
    /// `outcome=` how the last request ended (the POST, or the page's script,
    /// sends the browser there), without starting another.
    pub(super) async fn push_wait_page(&self, req: &Request) -> Reply {
        let ended = match req.field("outcome") {
            Some("denied") => Some(Text::PushDenied),
            Some("wrong-number") => Some(Text::PushWrongNumber),
            Some("expired") => Some(Text::PushExpired),
            _ => None,
        };
        if let Some(t) = ended {
            let has_totp = self.auth.login.push_attempt(&req.flow).await.is_ok_and(|a| a.stage == Stage::Totp);
            return self.push_page(req, Waiting::Notice(t, None), has_totp).await;
        }
        match self.waiting(req, true).await {
            Ok((w, has_totp)) => self.push_page(req, w, has_totp).await,
            Err(step) => self.login_step(req, step).await,
        }
    }

    /// `POST /.portcullis/push/again`: a new request (the old one is dropped).
    pub(super) async fn push_again(&self, req: &Request) -> Reply {
        let _ = request::forget_flow(self.auth, &req.flow).await;
        Reply::redirect(303, prg::here(req, "/.portcullis/push", &[]))
    }

    /// Waits for the answer to this browser's request: the outcome, or
    /// `None` while it is still pending.
    async fn push_outcome(&self, req: &Request) -> Result<(Option<Answer>, Option<PushRequest>), Step> {
        let unavailable = |_| Step::Unavailable;
        let Some(id) = request::id_of_flow(self.auth, &req.flow).await.map_err(unavailable)? else {
            return Ok((None, None));
        };
        // Answered already (the request itself is gone then).
        if let Some(o) = request::outcome(self.auth, &id).await.map_err(unavailable)? {
            return Ok((Some(o), None));
        }
        let Some(r) = request::get(self.auth, &id).await.map_err(unavailable)? else { return Ok((None, None)) };
        let left = Duration::from_secs(r.expires_at.saturating_sub(self.auth.clock.now()));
        let outcome = request::wait(self.auth, &r.id, WAIT.min(left)).await.map_err(|_| Step::Unavailable)?;
        Ok((outcome, Some(r)))
    }

    /// Finishes the login with the flow's approved request: taken once, and
    /// only for the user whose login this is.
    async fn use_approval(&self, req: &Request) -> Step {
        let Ok(Some(id)) = request::id_of_flow(self.auth, &req.flow).await else { return Step::NoAttempt };
        let _ = request::forget_flow(self.auth, &req.flow).await;
        match request::take_answer(self.auth, &id).await {
            Ok(Some(a)) if a.outcome == Outcome::Approved => {
                self.auth.login.push_approved(self.config, &req.flow, &a.user).await
            }
            Ok(_) => Step::NoAttempt,
            Err(_) => Step::Unavailable,
        }
    }

    /// `POST /.portcullis/push`: waits (up to 25 s) for the answer, then goes
    /// on: signed in, or back to the push page (still waiting, or how it ended).
    pub(super) async fn push_continue(&self, req: &Request) -> Reply {
        if let Err(step) = self.auth.login.push_attempt(&req.flow).await {
            return self.login_step(req, step).await;
        }
        let back = |outcome: &str| {
            let extra: &[(&str, &str)] = if outcome.is_empty() { &[] } else { &[("outcome", outcome)] };
            Reply::redirect(303, prg::here(req, "/.portcullis/push", extra))
        };
        match self.push_outcome(req).await {
            Ok((Some(a), _)) if a.outcome == Outcome::Approved => {
                let step = self.use_approval(req).await;
                self.login_step(req, step).await
            }
            Ok((Some(a), _)) => {
                self.auth.login.drop_attempt(&req.flow).await;
                back(if outcome_text(a.outcome) == Text::PushDenied { "denied" } else { "wrong-number" })
            }
            Ok((None, Some(r))) if r.expires_at > self.auth.clock.now() => back(""),
            Ok((None, _)) => back("expired"),
            Err(step) => self.login_step(req, step).await,
        }
    }

    /// `POST /.portcullis/api/push`: starts (or shows) the request.
    pub(super) async fn api_push_start(&self, req: &Request) -> Reply {
        match self.waiting(req, true).await {
            Ok((Waiting::Number(r), _)) => {
                Reply::json(200, &json!({"next": "push_wait", "number": r.number, "expires_at": r.expires_at}))
            }
            Ok((Waiting::Notice(t, at), has_totp)) => {
                let reason = match t {
                    Text::PushNoDevice => "no_device",
                    Text::PushTooMany => "too_many",
                    Text::PushBlocked => "blocked",
                    _ => "expired",
                };
                let alternatives = if has_totp { json!(["totp", "recovery"]) } else { json!([]) };
                let message = crate::challenge::pages::text(req.lang, t)
                    .replace("{time}", &at.map(|t| self.local(t)).unwrap_or_default());
                Reply::json(
                    409,
                    &json!({"next": "push_unavailable", "reason": reason, "retry_at": at, "message": message, "alternatives": alternatives}),
                )
            }
            Err(step) => self.api_step(req, step).await,
        }
    }

    /// `POST /.portcullis/api/push/wait`: a long poll (up to 25 s).
    pub(super) async fn api_push_wait(&self, req: &Request) -> Reply {
        if let Err(step) = self.auth.login.push_attempt(&req.flow).await {
            return self.api_step(req, step).await;
        }
        match self.push_outcome(req).await {
            Ok((Some(a), _)) if a.outcome == Outcome::Approved => {
                let step = self.use_approval(req).await;
                self.api_step(req, step).await
            }
            Ok((Some(a), _)) => {
                self.auth.login.drop_attempt(&req.flow).await;
                let o = a.outcome;
                let next = match o {
                    Outcome::Denied | Outcome::NotMe => "denied",
                    _ => "wrong_number",
                };
                let message = crate::challenge::pages::text(req.lang, outcome_text(o));
                Reply::json(200, &json!({"next": next, "message": message}))
            }
            Ok((None, Some(r))) if r.expires_at > self.auth.clock.now() => {
                Reply::json(200, &json!({"next": "push_wait", "number": r.number, "expires_at": r.expires_at}))
            }
            Ok((None, _)) => Reply::json(
                200,
                &json!({"next": "expired", "message": crate::challenge::pages::text(req.lang, Text::PushExpired)}),
            ),
            Err(step) => self.api_step(req, step).await,
        }
    }

    /// `GET /.portcullis/approvers`, and `POST /.portcullis/approvers/link`
    /// (`new_link`), which makes an enrollment code, keeps it for this
    /// browser's page for as long as it works, and redirects there.
    pub(super) async fn approvers_page(&self, req: &Request, new_link: bool) -> Reply {
        // Adding a second factor needs one: a session whose second factor
        // was skipped (inside, a pass) may not add or remove devices.
        let Some(s) = self.session.filter(|s| s.session.level == crate::identity::session::SessionLevel::BothFactors)
        else {
            if new_link {
                return Reply::redirect(303, prg::notice_url(req, Notice::Expired));
            }
            return self.page(req, Page::Error { message: Text::ErrSessionExpired });
        };
        let store = self.auth.store();
        let shown_key = format!("approver-link:{}", req.flow);
        if new_link {
            let made = approver::make_enroll_code(store.as_ref(), &s.session.user).await;
            let kept = match made {
                Ok(code) => store.put_challenge(&shown_key, code.as_bytes(), approver::ENROLL_TTL).await,
                Err(e) => Err(e),
            };
            let to = match kept {
                Ok(()) => prg::here(req, "/.portcullis/approvers", &[]),
                Err(_) => prg::notice_url(req, Notice::Unavailable),
            };
            return Reply::redirect(303, to);
        }
        let (mut qr, mut link) = (None, None);
        if let Ok(Some(code)) = store.get_challenge(&shown_key).await {
            let url =
                format!("https://{}/.portcullis/approver/#enroll={}", req.authority(), String::from_utf8_lossy(&code));
            qr = Some(crate::challenge::totp::qr_svg(&url));
            link = Some(url);
        }
        let Ok(devices) = approver::list(store.as_ref(), &s.session.user).await else {
            return self.page(req, Page::Unavailable);
        };
        let rows: Vec<(String, String, String)> =
            devices.iter().map(|d| (d.id.clone(), d.name.clone(), self.local(d.added_at))).collect();
        self.page(req, Page::Approvers { devices: &rows, qr_svg: qr.as_deref(), link: link.as_deref() })
    }

    pub(super) async fn approver_remove(&self, req: &Request) -> Reply {
        // Adding a second factor needs one: a session whose second factor
        // was skipped (inside, a pass) may not add or remove devices.
        let Some(s) = self.session.filter(|s| s.session.level == crate::identity::session::SessionLevel::BothFactors)
        else {
            return Reply::redirect(303, prg::notice_url(req, Notice::Expired));
        };
        let id = req.field("device").unwrap_or_default();
        match approver::remove(self.auth.store().as_ref(), &s.session.user, id).await {
            Ok(_) => Reply::redirect(303, prg::here(req, "/.portcullis/approvers", &[])),
            Err(_) => Reply::redirect(303, prg::notice_url(req, Notice::Unavailable)),
        }
    }

    /// The approver API: `enroll`, `pending`, `subscribe`, `decide`.
    pub(super) async fn approver_api(&self, req: &Request) -> Reply {
        let now = self.auth.clock.now();
        let store = self.auth.store();
        let f = |k: &str| req.field(k).unwrap_or_default();
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/.portcullis/api/approver/enroll") => {
                match approver::enroll(store.as_ref(), f("code"), f("name"), f("public_key"), now).await {
                    Ok(d) => {
                        crate::notices::notify(
                            self.config,
                            &d.user,
                            crate::notices::Notice::ApproverAdded { device: d.name.clone() },
                        );
                        Reply::json(
                            200,
                            &json!({"device": d.id, "user": d.user, "vapid_public_key": self.auth.vapid_public_key()}),
                        )
                    }
                    Err(e) => approver_error(e),
                }
            }
            ("GET", "/.portcullis/api/approver/pending") => match self.signed_read(req, "pending").await {
                Ok(d) => match request::pending_for(self.auth, &d.user).await {
                    Ok(list) => {
                        let list: Vec<Value> = list.iter().map(|r| request::for_device(r, self.config)).collect();
                        Reply::json(200, &json!({"requests": list}))
                    }
                    Err(_) => error(503, "temporarily_unavailable", "try again in a minute"),
                },
                Err(e) => approver_error(e),
            },
            ("POST", "/.portcullis/api/approver/subscribe") => self.approver_subscribe(req).await,
            ("POST", "/.portcullis/api/approver/decide") => self.approver_decide(req).await,
            _ => error(404, "not_found", "no such approver endpoint"),
        }
    }

    /// The device of a signed read (`pending`, `events`).
    async fn signed_read(&self, req: &Request, purpose: &str) -> Result<Approver, ApproverError> {
        let f = |k: &str| req.field(k).unwrap_or_default();
        let device = approver::find(self.auth.store().as_ref(), f("device")).await?;
        device.verify_read(purpose, f("ts"), f("sig"), self.auth.clock.now())?;
        Ok(device)
    }

    async fn approver_subscribe(&self, req: &Request) -> Reply {
        let f = |k: &str| req.field(k).unwrap_or_default();
        let Some(sub) = req.json.as_ref().map(|v| &v["subscription"]) else {
            return error(400, "bad_request", "send {\"device\", \"ts\", \"sig\", \"subscription\"}");
        };
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let subscription = approver::Subscription {
            endpoint: s(&sub["endpoint"]),
            p256dh: s(&sub["keys"]["p256dh"]),
            auth: s(&sub["keys"]["auth"]),
        };
        if !crate::push::webpush::endpoint_allowed(&subscription.endpoint, &self.config.push.web_push_hosts) {
            return error(400, "endpoint_not_allowed", "this push service is not among [push] web_push_hosts");
        }
        let store = self.auth.store();
        let device = match approver::find(store.as_ref(), f("device")).await {
            Ok(d) => d,
            Err(e) => return approver_error(e),
        };
        let ts = f("ts");
        let stale = ts.parse::<u64>().map_or(true, |t| t.abs_diff(self.auth.clock.now()) > approver::MAX_SKEW_SECS);
        if stale {
            return approver_error(ApproverError::Stale);
        }
        let message = approver::message("subscribe", &[&device.id, ts, &subscription.endpoint]);
        if let Err(e) = device.verify(&message, f("sig")) {
            return approver_error(e);
        }
        match approver::update(store.as_ref(), &device, |d| d.subscription = Some(subscription)).await {
            Ok(()) => Reply::json(200, &json!({"subscribed": true})),
            Err(_) => error(503, "temporarily_unavailable", "try again in a minute"),
        }
    }

    async fn approver_decide(&self, req: &Request) -> Reply {
        let f = |k: &str| req.field(k).unwrap_or_default();
        let device = match approver::find(self.auth.store().as_ref(), f("device")).await {
            Ok(d) => d,
            Err(e) => return approver_error(e),
        };
        match request::decide(self.auth, self.config, &device, f("request"), f("number"), f("decision"), f("sig")).await
        {
            Ok(Outcome::Approved) => Reply::json(200, &json!({"result": "approved"})),
            Ok(Outcome::Denied | Outcome::NotMe) => Reply::json(200, &json!({"result": "denied"})),
            Ok(Outcome::WrongNumber) => error(
                403,
                "wrong_number",
                "that is not the number the browser shows: the request is void, start a new one in the browser",
            ),
            Err(DecideError::Gone) => error(409, "gone", "this request was already answered, or has expired"),
            Err(DecideError::Device(e)) => approver_error(e),
            Err(DecideError::OtherUser) => error(403, "other_user", "this request is not for this device's user"),
            Err(DecideError::BadDecision) => error(400, "bad_request", "decision: approve, deny or not_me"),
            Err(DecideError::Unavailable) => error(503, "temporarily_unavailable", "try again in a minute"),
        }
    }

    /// `GET /.portcullis/api/approver/events`: the user's pending requests,
    /// then each new one and each answer, as server-sent events.
    pub(super) async fn approver_events(&self, session: &mut Session, req: &Request) -> pingora::Result<()> {
        let device = match self.signed_read(req, "events").await {
            Ok(d) => d,
            Err(e) => return approver_error(e).send(session).await,
        };
        let mut rx = self.auth.push_events.subscribe();
        let mut h = ResponseHeader::build(200, Some(6))?;
        h.insert_header("content-type", "text/event-stream")?;
        h.insert_header("cache-control", "no-store")?;
        h.insert_header("x-content-type-options", "nosniff")?;
        if !session.is_http2() {
            h.insert_header("transfer-encoding", "chunked")?;
        }
        session.write_response_header(Box::new(h), false).await?;
        let mut mine: Vec<String> = Vec::new();
        let event = |name: &str, data: &Value| bytes::Bytes::from(format!("event: {name}\ndata: {data}\n\n"));
        for r in request::pending_for(self.auth, &device.user).await.unwrap_or_default() {
            mine.push(r.id.clone());
            session.write_response_body(Some(event("request", &request::for_device(&r, self.config))), false).await?;
        }
        let end = tokio::time::Instant::now() + STREAM_FOR;
        loop {
            let out = tokio::select! {
                _ = tokio::time::sleep_until(end) => break,
                _ = tokio::time::sleep(KEEP_ALIVE) => Some(bytes::Bytes::from_static(b": keep-alive\n\n")),
                ev = rx.recv() => match ev {
                    Ok(Change::PushRequested { user, id }) if user == device.user => {
                        match request::get(self.auth, &id).await {
                            Ok(Some(r)) => {
                                mine.push(id);
                                Some(event("request", &request::for_device(&r, self.config)))
                            }
                            _ => None,
                        }
                    }
                    Ok(Change::PushSettled { id }) if mine.contains(&id) => Some(event("settled", &json!({"id": id}))),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                    Err(_) => break,
                },
            };
            if let Some(bytes) = out {
                if session.write_response_body(Some(bytes), false).await.is_err() {
                    return Ok(());
                }
            }
        }
        session.write_response_body(None, true).await
    }
}

fn outcome_text(o: Outcome) -> Text {
    match o {
        Outcome::Denied | Outcome::NotMe => Text::PushDenied,
        Outcome::WrongNumber => Text::PushWrongNumber,
        Outcome::Approved => Text::PushWaiting,
    }
}
