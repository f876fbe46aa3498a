//! The answer every admin route gives: a status, a content type and a body,
//! with the JSON shape and the store-unavailable answer all routes share.
//! The router (`api.rs`) and the route modules both use it, so none of them
//! imports another.

use serde_json::json;

pub struct AdminReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// A JSON answer.
pub fn reply(status: u16, v: serde_json::Value) -> AdminReply {
    AdminReply { status, content_type: "application/json", body: format!("{v}\n") }
}

/// `503 store_unavailable`: the store did not answer; nothing was changed.
pub fn unavailable(e: crate::store::StoreError) -> AdminReply {
    reply(503, json!({"error": "store_unavailable", "message": e.to_string()}))
}
