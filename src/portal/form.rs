//! Reading what a portal request sends: the body (bounded), form or JSON
//! fields, the query string, and the CSRF check that ties a form to the
//! browser's signed flow cookie.

use crate::identity::cookie::{request_cookie, KeyRing};
use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;
use std::collections::HashMap;

/// Bodies larger than this are refused (413): no portal form is near it.
pub const MAX_BODY: usize = 16 * 1024;
pub const FLOW_COOKIE: &str = "__Host-portcullis-flow";

#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    Read,
    Malformed(&'static str),
}

/// Reads the whole request body, refusing more than [`MAX_BODY`].
pub async fn read_body(session: &mut Session) -> Result<Bytes, BodyError> {
    let mut buf = BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_BODY {
                    return Err(BodyError::TooLarge);
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(_) => return Err(BodyError::Read),
        }
    }
}

/// Fields of an `application/x-www-form-urlencoded` body or query string.
/// A repeated field keeps its first value; values are length-capped.
pub fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(body).take(32) {
        if k.len() <= 64 && v.len() <= 4096 {
            out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
    }
    out
}

/// Every field of a form body in order, repeated names included: at most
/// 2,000 pairs (a 16 KiB body holds fewer), values length-capped as in [`parse_form`].
pub fn parse_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .take(2000)
        .filter(|(k, v)| k.len() <= 64 && v.len() <= 4096)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Fields of a JSON object body: strings (up to 4 KiB), booleans as "true"/"false" and numbers
/// as their decimal text; nested objects and arrays are skipped (see `Request::json`).
pub fn parse_json(body: &[u8]) -> Result<HashMap<String, String>, BodyError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(HashMap::new());
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| BodyError::Malformed("the body is not valid JSON"))?;
    let obj = v.as_object().ok_or(BodyError::Malformed("the body must be a JSON object"))?;
    let mut out = HashMap::new();
    for (k, v) in obj.iter().take(32) {
        let s = match v {
            serde_json::Value::String(s) if s.len() <= 4096 => s.clone(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => continue,
            // Nested values are read from the parsed body where an endpoint takes one.
            serde_json::Value::Object(_) | serde_json::Value::Array(_) => continue,
            serde_json::Value::String(_) => return Err(BodyError::Malformed("a field is too long")),
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// The browser's flow id from its signed flow cookie, if present and valid.
pub fn flow_id<'a>(cookies: impl Iterator<Item = &'a [u8]>, keys: &KeyRing) -> Option<String> {
    let value = request_cookie(cookies, FLOW_COOKIE)?;
    let id = keys.verify("flow", &value).ok()?;
    String::from_utf8(id).ok().filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn new_flow_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The CSRF token for forms of this flow.
pub fn csrf_token(keys: &KeyRing, flow: &str) -> String {
    keys.sign("csrf", flow.as_bytes())
}

/// Whether a submitted CSRF token belongs to this flow (the MAC check is constant-time).
pub fn csrf_ok(keys: &KeyRing, flow: &str, token: Option<&String>) -> bool {
    token
        .and_then(|t| keys.verify("csrf", t).ok())
        .is_some_and(|id| subtle::ConstantTimeEq::ct_eq(id.as_slice(), flow.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_json() {
        let f = parse_form(b"username=alice&password=p%26w+x&username=mallory");
        assert_eq!(f["username"], "alice");
        assert_eq!(f["password"], "p&w x");
        let j = parse_json(br#"{"code":"123456","everywhere":true,"x":null}"#).unwrap();
        assert_eq!(j["code"], "123456");
        assert_eq!(j["everywhere"], "true");
        assert!(parse_json(b"[1]").is_err());
        // Numbers are read as their decimal text (an approver's `ts`); nested
        // values are left to the endpoints that take them; overlong text is refused.
        let j = parse_json(br#"{"code":123456,"ts":1700000000,"subscription":{"endpoint":"x"}}"#).unwrap();
        assert_eq!((j["code"].as_str(), j["ts"].as_str()), ("123456", "1700000000"));
        assert!(!j.contains_key("subscription"));
        let long = format!(r#"{{"code":"{}"}}"#, "9".repeat(5000));
        assert!(parse_json(long.as_bytes()).is_err());
        assert!(parse_json(b"{").is_err());
        assert!(parse_json(b"  ").unwrap().is_empty());
    }

    #[test]
    fn csrf_is_bound_to_the_flow() {
        let keys = KeyRing::generate();
        let flow = new_flow_id();
        let token = csrf_token(&keys, &flow);
        assert!(csrf_ok(&keys, &flow, Some(&token)));
        assert!(!csrf_ok(&keys, &new_flow_id(), Some(&token)));
        assert!(!csrf_ok(&keys, &flow, None));
        assert!(!csrf_ok(&keys, &flow, Some(&"v1.1.AAAA.BBBB".to_string())));
        let flow_cookie = keys.sign("flow", flow.as_bytes());
        assert!(!csrf_ok(&keys, &flow, Some(&flow_cookie)), "a flow cookie is not a CSRF token");
    }
}
