//! A push request from start to answer. The request lives in the store's
//! challenge space (`push:ID`, for the TTL), bound to the browser's flow
//! (`push-flow:FLOW`); the answer is taken exactly once (`take_challenge`)
//! and left as `push-result:ID` for the waiting browser, which learns of it
//! through the change feed (`Change::PushSettled`), on whichever instance
//! it waits.
//!
//! Abuse limits: at most `max_outstanding` requests per user per `window`;
//! a "deny" or "this wasn't me" blocks new requests for `block_after_deny`
//! and is recorded; a wrong number or a "this wasn't me" counts as a failed
//! login toward the lockout.

use super::approver::{self, Approver, ApproverError};
use crate::auth::Auth;
use crate::config::{Config, PushSettings};
use crate::store::{Change, StoreError};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// The record of a request (`push:ID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    pub id: String,
    pub user: String,
    pub app: String,
    pub host: String,
    /// The number the browser shows (10–99).
    pub number: u8,
    /// Three numbers, the right one among them, for the device to pick from.
    pub choices: [u8; 3],
    pub number_matching: bool,
    pub created_at: u64,
    pub expires_at: u64,
    pub from: String,
    pub browser: String,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Denied,
    /// The device said "this wasn't me".
    NotMe,
    /// A wrong number was picked: the request is void.
    WrongNumber,
}

/// An answer as recorded (`push-result:ID`): whose request it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub outcome: Outcome,
    pub user: String,
}

/// Why no request could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoDevice,
    /// Too many requests lately: retry at this time.
    TooMany {
        retry_at: u64,
    },
    /// A recent "deny": no push until this time.
    Blocked {
        until: u64,
    },
    Unavailable,
}

/// Why an answer was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum DecideError {
    /// Answered already, expired, or never made.
    Gone,
    Device(ApproverError),
    /// Not a device of the request's user.
    OtherUser,
    BadDecision,
    Unavailable,
}

impl From<StoreError> for DecideError {
    fn from(_: StoreError) -> DecideError {
        DecideError::Unavailable
    }
}

fn request_key(id: &str) -> String {
    format!("push:{id}")
}

fn result_key(id: &str) -> String {
    format!("push-result:{id}")
}

/// The key naming a browser flow's latest request (a new login attempt
/// drops it, so an answer never finishes another login).
pub fn flow_key(flow: &str) -> String {
    format!("push-flow:{flow}")
}

fn user_key(user: &str) -> String {
    format!("push-user:{user}")
}

fn block_key(user: &str) -> String {
    format!("push-block:{user}")
}

/// Two different two-digit numbers besides `number`, in a random order with it.
fn choices(number: u8) -> [u8; 3] {
    use rand::seq::SliceRandom;
    let mut rng = rand::thread_rng();
    let mut picked = vec![number];
    while picked.len() < 3 {
        let n = rand::Rng::gen_range(&mut rng, 10..=99);
        if !picked.contains(&n) {
            picked.push(n);
        }
    }
    picked.shuffle(&mut rng);
    [picked[0], picked[1], picked[2]]
}

/// What a browser's login is about, for the device to show.
pub struct Context<'a> {
    pub user: &'a str,
    pub app: &'a str,
    pub host: &'a str,
    pub flow: &'a str,
    pub from: IpAddr,
    pub user_agent: &'a str,
    pub number_matching: bool,
}

/// Starts a push request for a login waiting on its second factor, or says
/// why not. Notifies the user's devices.
pub async fn start(auth: &Auth, cfg: &Config, c: Context<'_>) -> Result<PushRequest, Refusal> {
    let store = auth.store();
    let p = &cfg.push;
    let now = auth.clock.now();
    let unavailable = |_| Refusal::Unavailable;
    if let Some(until) = store.get_challenge(&block_key(c.user)).await.map_err(unavailable)? {
        let until = std::str::from_utf8(&until).ok().and_then(|s| s.parse().ok()).unwrap_or(now);
        return Err(Refusal::Blocked { until });
    }
    let devices = approver::list(store.as_ref(), c.user).await.map_err(unavailable)?;
    if devices.is_empty() {
        return Err(Refusal::NoDevice);
    }
    let counted = store.count(&format!("push-count:{}", c.user), p.window).await.map_err(unavailable)?;
    if counted > u64::from(p.max_outstanding) {
        return Err(Refusal::TooMany { retry_at: now + p.window.as_secs() });
    }
    let number = rand::Rng::gen_range(&mut rand::thread_rng(), 10..=99);
    let request = PushRequest {
        id: hex::encode(rand::random::<[u8; 16]>()),
        user: c.user.to_string(),
        app: c.app.to_string(),
        host: c.host.to_string(),
        number,
        choices: choices(number),
        number_matching: c.number_matching,
        created_at: now,
        expires_at: now + p.ttl.as_secs(),
        from: c.from.to_canonical().to_string(),
        browser: crate::identity::pass::describe_browser(c.user_agent),
    };
    let bytes = serde_json::to_vec(&request).unwrap_or_default();
    // Kept a little past the TTL, so a late answer is told "expired", not "unknown".
    let keep = p.ttl + Duration::from_secs(60);
    store.put_challenge(&request_key(&request.id), &bytes, keep).await.map_err(unavailable)?;
    store.put_challenge(&flow_key(c.flow), request.id.as_bytes(), keep).await.map_err(unavailable)?;
    // The user's recent requests, for an approver app that opens later.
    let mut recent: Vec<String> = match store.get_challenge(&user_key(c.user)).await.map_err(unavailable)? {
        Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
        None => Vec::new(),
    };
    recent.push(request.id.clone());
    let skip = recent.len().saturating_sub(10);
    let recent: Vec<String> = recent.into_iter().skip(skip).collect();
    let bytes = serde_json::to_vec(&recent).unwrap_or_default();
    store.put_challenge(&user_key(c.user), &bytes, keep).await.map_err(unavailable)?;
    store
        .publish(Change::PushRequested { user: request.user.clone(), id: request.id.clone() })
        .await
        .map_err(unavailable)?;
    crate::audit!(
        "push_requested",
        user = %request.user,
        request = %request.id,
        app = %request.app,
        from = %request.from
    );
    super::notify::devices(auth, p, &request, &devices);
    Ok(request)
}

/// The request a browser's flow is waiting on, while it is pending.
pub async fn of_flow(auth: &Auth, flow: &str) -> Result<Option<PushRequest>, StoreError> {
    match id_of_flow(auth, flow).await? {
        Some(id) => get(auth, &id).await,
        None => Ok(None),
    }
}

/// The id of the flow's latest request, answered or not.
pub async fn id_of_flow(auth: &Auth, flow: &str) -> Result<Option<String>, StoreError> {
    let id = auth.store().get_challenge(&flow_key(flow)).await?;
    Ok(id.map(|id| String::from_utf8_lossy(&id).into_owned()))
}

/// A pending request by id.
pub async fn get(auth: &Auth, id: &str) -> Result<Option<PushRequest>, StoreError> {
    let bytes = auth.store().get_challenge(&request_key(id)).await?;
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// How a request ended, if it has.
pub async fn outcome(auth: &Auth, id: &str) -> Result<Option<Answer>, StoreError> {
    let bytes = auth.store().get_challenge(&result_key(id)).await?;
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Takes an answer to use it (an approval finishes one login, once).
pub async fn take_answer(auth: &Auth, id: &str) -> Result<Option<Answer>, StoreError> {
    let bytes = auth.store().take_challenge(&result_key(id)).await?;
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Forgets the flow's request (the login finished or moved to TOTP).
pub async fn forget_flow(auth: &Auth, flow: &str) -> Result<(), StoreError> {
    auth.store().delete_challenge(&flow_key(flow)).await
}

/// Waits up to `timeout` for the request's outcome: woken by the change
/// feed (an answer through any instance), re-reading the store every few
/// seconds in case a wake-up was missed. `None`: still pending.
pub async fn wait(auth: &Auth, id: &str, timeout: Duration) -> Result<Option<Answer>, StoreError> {
    let mut events = auth.push_events.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(o) = outcome(auth, id).await? {
            return Ok(Some(o));
        }
        let tick = tokio::time::Instant::now() + Duration::from_secs(3);
        let until = tick.min(deadline);
        loop {
            match tokio::time::timeout_at(until, events.recv()).await {
                Ok(Ok(Change::PushSettled { id: settled })) if settled == id => break,
                Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(_)) | Err(_) => break,
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return outcome(auth, id).await;
        }
    }
}

/// A device's answer: signed by a device of the request's user, over the
/// request, the number and the decision; taken exactly once.
pub async fn decide(
    auth: &Auth,
    cfg: &Config,
    device: &Approver,
    id: &str,
    number: &str,
    decision: &str,
    signature: &str,
) -> Result<Outcome, DecideError> {
    let now = auth.clock.now();
    let request = get(auth, id).await?.ok_or(DecideError::Gone)?;
    if request.user != device.user {
        return Err(DecideError::OtherUser);
    }
    device
        .verify(&approver::message("decide", &[&device.id, id, number, decision]), signature)
        .map_err(DecideError::Device)?;
    let wanted = match decision {
        "approve" => Outcome::Approved,
        "deny" => Outcome::Denied,
        "not_me" => Outcome::NotMe,
        _ => return Err(DecideError::BadDecision),
    };
    if now >= request.expires_at {
        return Err(DecideError::Gone);
    }
    // Exactly once: whoever takes the request answers it.
    if auth.store().take_challenge(&request_key(id)).await?.is_none() {
        return Err(DecideError::Gone);
    }
    let outcome = match wanted {
        Outcome::Approved if request.number_matching && number.parse::<u8>().ok() != Some(request.number) => {
            Outcome::WrongNumber
        }
        other => other,
    };
    settle(auth, cfg, &request, outcome, &device.id).await?;
    let _ = approver::update(auth.store().as_ref(), device, |d| d.last_used = Some(now)).await;
    Ok(outcome)
}

/// Records an outcome, applies its consequences, and wakes the browser.
async fn settle(auth: &Auth, cfg: &Config, r: &PushRequest, outcome: Outcome, device: &str) -> Result<(), StoreError> {
    let store = auth.store();
    let p: &PushSettings = &cfg.push;
    let bytes = serde_json::to_vec(&Answer { outcome, user: r.user.clone() }).unwrap_or_default();
    store.put_challenge(&result_key(&r.id), &bytes, Duration::from_secs(300)).await?;
    if matches!(outcome, Outcome::Denied | Outcome::NotMe) && !p.block_after_deny.is_zero() {
        let until = auth.clock.now() + p.block_after_deny.as_secs();
        store.put_challenge(&block_key(&r.user), until.to_string().as_bytes(), p.block_after_deny).await?;
    }
    if matches!(outcome, Outcome::NotMe | Outcome::WrongNumber) {
        auth.login.count_push_failure(cfg, &r.user).await;
    }
    store.publish(Change::PushSettled { id: r.id.clone() }).await?;
    crate::audit!("push_answered", user = %r.user, request = %r.id, device = %device, outcome = %crate::logging::SerdeName(&outcome));
    Ok(())
}

/// The request as an approver device sees it.
pub fn for_device(r: &PushRequest, cfg: &Config) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "app": r.app, "host": r.host, "at": r.created_at,
        "at_local": crate::challenge::cooldown::LocalTime(r.created_at, cfg.totp.utc_offset).to_string(),
        "from": r.from, "browser": r.browser, "expires_at": r.expires_at,
        "number_matching": r.number_matching,
        "choices": if r.number_matching { serde_json::json!(r.choices) } else { serde_json::json!([]) },
    })
}

/// The user's requests still pending (for `pending` and a newly opened app).
pub async fn pending_for(auth: &Auth, user: &str) -> Result<Vec<PushRequest>, StoreError> {
    let ids: Vec<String> = match auth.store().get_challenge(&user_key(user)).await? {
        Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
        None => return Ok(Vec::new()),
    };
    let now = auth.clock.now();
    let mut out = Vec::new();
    for id in &ids {
        if let Ok(Some(r)) = get(auth, id).await {
            if r.user == user && r.expires_at > now {
                out.push(r);
            }
        }
    }
    Ok(out)
}
