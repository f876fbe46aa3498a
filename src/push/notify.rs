//! Telling a user's devices of a new push request: open approver apps learn
//! it from the change feed (server-sent events, see the portal), subscribed
//! devices get a Web Push message, and a configured webhook gets the request
//! as JSON. Sending never holds up the login: it runs in its own task.

use super::approver::Approver;
use super::request::PushRequest;
use crate::auth::Auth;
use crate::config::PushSettings;

/// Starts the notifications of `request` and returns at once.
pub fn devices(auth: &Auth, p: &PushSettings, request: &PushRequest, devices: &[Approver]) {
    let body = serde_json::json!({
        "title": format!("Sign-in to {}", request.app),
        "body": format!("{} from {} ({}). Open to approve.", request.user, request.from, request.browser),
        "request": request.id,
    });
    if let Some(url) = p.webhook.clone() {
        let client = auth.http.clone();
        let hook = serde_json::json!({
            "event": "push_requested", "user": request.user, "app": request.app, "host": request.host,
            "from": request.from, "browser": request.browser, "expires_at": request.expires_at,
            "title": body["title"], "message": body["body"],
        });
        tokio::spawn(async move {
            match client.post(&url).json(&hook).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!("push webhook answered {}", r.status()),
                Err(e) => tracing::warn!("push webhook failed: {e}"),
            }
        });
    }
    web_push(auth, p, &body, devices);
}

/// Web Push to every subscribed device whose push service is allowed; a
/// subscription the service says is gone is dropped.
fn web_push(auth: &Auth, p: &PushSettings, body: &serde_json::Value, devices: &[Approver]) {
    let Some(vapid) = auth.vapid.load_full() else { return };
    for d in devices {
        let Some(s) = d.subscription.clone() else { continue };
        if !super::webpush::endpoint_allowed(&s.endpoint, &p.web_push_hosts) {
            continue;
        }
        let sub = super::webpush::Subscription { endpoint: s.endpoint, p256dh: s.p256dh, auth: s.auth };
        let (client, vapid, contact, payload) = (auth.http.clone(), vapid.clone(), p.contact.clone(), body.to_string());
        let (store, device) = (auth.store().clone(), d.clone());
        let ttl = p.ttl.as_secs() as u32;
        tokio::spawn(async move {
            match super::webpush::send(&client, &sub, payload.as_bytes(), &vapid, &contact, ttl).await {
                Ok(()) => {}
                Err(super::webpush::SendError::Gone) => {
                    tracing::info!("web push subscription of approver {} is gone: dropped", device.id);
                    let _ = super::approver::update(store.as_ref(), &device, |d| d.subscription = None).await;
                }
                Err(e) => tracing::warn!("web push to approver {} failed: {e}", device.id),
            }
        });
    }
}
