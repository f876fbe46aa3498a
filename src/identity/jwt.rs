//! The signed identity for apps: an ES256 JWT (RFC 7519, RFC 7518 §3.4) on
//! every forwarded request of a signed-in user, so an app can check who the
//! user is without trusting the network between it and the proxy.
//!
//! Keys rotate like the cookie keys: [`IdentityKeys`] holds the current P-256
//! key, which signs, and the previous one, which stays published in the JWK
//! set (`/.portcullis/jwks.json`) until the next rotation, so a token signed
//! just before a rotation still verifies. A key's `kid` is its RFC 7638
//! thumbprint, the same on every instance that shares the ring.
//!
//! Signing costs tens of microseconds, so it is done once per session, app
//! and key: [`TokenCache`] keeps each token until shortly before it expires.
//! Each worker thread keeps the last tokens it used in a front of its own,
//! so a keep-alive connection's requests take no lock; a miss there costs a
//! keyed hash, an uncontended lock of one shard, and a
//! reference-count increment (the header value is shared, not copied).

use crate::identity::session::Session;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One signing key with its public half as the JWK set shows it.
#[derive(Clone)]
pub struct IdentityKey {
    kid: String,
    key: SigningKey,
    x: String,
    y: String,
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl IdentityKey {
    fn new(key: SigningKey) -> IdentityKey {
        let point = key.verifying_key().to_encoded_point(false);
        // An uncompressed point of a valid key always has both coordinates.
        let x = URL_SAFE_NO_PAD.encode(point.x().expect("uncompressed point"));
        let y = URL_SAFE_NO_PAD.encode(point.y().expect("uncompressed point"));
        // RFC 7638: the required members, sorted, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        IdentityKey { kid, key, x, y }
    }

    fn jwk(&self) -> serde_json::Value {
        serde_json::json!({"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y, "kid": self.kid, "alg": "ES256", "use": "sig"})
    }
}

/// Current + previous signing key, and the JWK set publishing both.
#[derive(Debug, Clone)]
pub struct IdentityKeys {
    current: IdentityKey,
    previous: Option<IdentityKey>,
    jwks: String,
}

/// The ring as stored (sealed): the secret scalars in hex.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RingFile {
    current: String,
    previous: Option<String>,
}

impl IdentityKeys {
    pub fn generate() -> IdentityKeys {
        IdentityKeys::from_keys(IdentityKey::new(SigningKey::random(&mut OsRng)), None)
    }

    fn from_keys(current: IdentityKey, previous: Option<IdentityKey>) -> IdentityKeys {
        let keys: Vec<_> = std::iter::once(&current).chain(previous.as_ref()).map(IdentityKey::jwk).collect();
        let jwks = serde_json::json!({ "keys": keys }).to_string();
        IdentityKeys { current, previous, jwks }
    }

    /// previous = current, current = a fresh key.
    pub fn rotate(&self) -> IdentityKeys {
        IdentityKeys::from_keys(IdentityKey::new(SigningKey::random(&mut OsRng)), Some(self.current.clone()))
    }

    pub fn current_kid(&self) -> &str {
        &self.current.kid
    }

    /// The JWK set (`{"keys": [current, previous]}`), rendered once.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// The ring with its secrets: seal it before it is stored.
    pub fn to_json(&self) -> String {
        let hex_of = |k: &IdentityKey| hex::encode(k.key.to_bytes());
        let file = RingFile { current: hex_of(&self.current), previous: self.previous.as_ref().map(hex_of) };
        serde_json::to_string(&file).expect("strings serialise")
    }

    /// Parses [`IdentityKeys::to_json`] output; errors never echo a secret.
    pub fn from_json(s: &str) -> Result<IdentityKeys, String> {
        let file: RingFile = serde_json::from_str(s).map_err(|e| format!("identity keys: {:?} error", e.classify()))?;
        let key = |hex_text: &str| {
            let raw = hex::decode(hex_text).map_err(|_| "identity keys: a key is not hex".to_string())?;
            let key = SigningKey::from_slice(&raw).map_err(|_| "identity keys: a key is not a P-256 scalar")?;
            Ok::<_, String>(IdentityKey::new(key))
        };
        let current = key(&file.current)?;
        let previous = file.previous.as_deref().map(key).transpose()?;
        Ok(IdentityKeys::from_keys(current, previous))
    }

    /// `claims` as a compact JWS signed with the current key.
    pub fn sign(&self, claims: &Claims<'_>) -> String {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            typ: &'static str,
            kid: &'a str,
        }
        let header = Header { alg: "ES256", typ: "JWT", kid: &self.current.kid };
        let mut token = String::with_capacity(512);
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(&header).expect("header serialises"), &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims).expect("claims serialise"), &mut token);
        let signature: Signature = self.current.key.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        token
    }
}

/// What the token says (RFC 7519 §4.1 names; `amr` from RFC 8176).
#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    pub iss: &'a str,
    /// The user name.
    pub sub: &'a str,
    /// The app's name (stable across its hosts).
    pub aud: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    pub groups: &'a [String],
    /// The factors the session was won with; empty when not known.
    pub amr: Vec<&'static str>,
    pub iat: u64,
    pub exp: u64,
}

/// What a request needs from the settings and the user to get a token.
pub struct Request<'a> {
    pub session: &'a Session,
    pub app: &'a str,
    pub issuer: &'a str,
    pub email: Option<&'a str>,
    pub groups: &'a [String],
    pub lifetime_secs: u64,
    /// Tokens made under another config (another set of claims) are not reused.
    pub config_tag: usize,
}

impl Request<'_> {
    fn claims(&self, now: u64) -> Claims<'_> {
        Claims {
            iss: self.issuer,
            sub: &self.session.user,
            aud: self.app,
            email: self.email,
            groups: self.groups,
            amr: self.session.factors.amr(),
            iat: now,
            // Never beyond the session's own end.
            exp: now.saturating_add(self.lifetime_secs).min(self.session.expires_at),
        }
    }
}

const SHARDS: usize = 16;
/// How many tokens are kept in all (about 1 KiB each with the map's share).
pub const CACHE_CAPACITY: usize = 16 * 1024;

/// Signed tokens by (session id, app, key id), in [`SHARDS`] independently
/// locked maps of at most `CACHE_CAPACITY / SHARDS` entries each. An entry is
/// used until shortly before its token expires (see [`TokenCache::token`]);
/// a full shard first drops what is due for renewal, then an arbitrary entry.
pub struct TokenCache {
    shards: Box<[Mutex<HashMap<u64, Cached>>]>,
    /// Keyed with random keys, so no client can aim entries at one shard.
    hasher: std::collections::hash_map::RandomState,
    per_shard: usize,
    signed: AtomicU64,
}

struct Cached {
    session: Box<str>,
    app: Box<str>,
    kid: Box<str>,
    config_tag: usize,
    renew_at: u64,
    token: http::HeaderValue,
}

impl Default for TokenCache {
    fn default() -> TokenCache {
        TokenCache::with_capacity(CACHE_CAPACITY)
    }
}

impl TokenCache {
    pub fn with_capacity(capacity: usize) -> TokenCache {
        TokenCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            signed: AtomicU64::new(0),
        }
    }

    /// How many tokens were signed so far (cache misses).
    pub fn signed(&self) -> u64 {
        self.signed.load(Ordering::Relaxed)
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The token for `req` at `now`: the cached one while it has more than a
    /// quarter of its lifetime (at most a minute) left, else a fresh one
    /// signed with the current key of `keys`.
    pub fn token(&self, keys: &IdentityKeys, req: &Request<'_>, now: u64) -> http::HeaderValue {
        let kid = keys.current_kid();
        // This thread's front (no lock): a keep-alive connection's requests
        // find their token here.
        let owner = self as *const TokenCache as usize;
        let slot = front_slot(&req.session.id);
        let hit = FRONT.with_borrow(|f| {
            f[slot]
                .as_ref()
                .filter(|c| c.owner == owner && c.entry.matches(req, kid, now))
                .map(|c| c.entry.token.clone())
        });
        if let Some(token) = hit {
            return token;
        }
        let (token, renew_at) = self.shared_token(keys, req, kid, now);
        let entry = Cached::of(req, kid, renew_at, token.clone());
        FRONT.with_borrow_mut(|f| f[slot] = Some(Front { owner, entry }));
        token
    }

    /// The token and when to renew it, from the shared cache or signed now.
    fn shared_token(&self, keys: &IdentityKeys, req: &Request<'_>, kid: &str, now: u64) -> (http::HeaderValue, u64) {
        let hash = self.hasher.hash_one((req.session.id.as_str(), req.app, kid));
        let shard = &self.shards[(hash >> 60) as usize % SHARDS];
        {
            let map = shard.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = map.get(&hash).filter(|c| c.matches(req, kid, now)) {
                return (c.token.clone(), c.renew_at);
            }
        }
        // Signed outside the lock; two requests racing here both sign, once.
        let claims = req.claims(now);
        let margin = (req.lifetime_secs / 4).min(60);
        let renew_at = now.saturating_add(req.lifetime_secs - margin).min(claims.exp);
        let token = http::HeaderValue::try_from(keys.sign(&claims)).expect("base64url and dots are a header value");
        self.signed.fetch_add(1, Ordering::Relaxed);
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.per_shard && !map.contains_key(&hash) {
            map.retain(|_, c| now < c.renew_at);
            if map.len() >= self.per_shard {
                let victim = map.keys().next().copied();
                victim.map(|k| map.remove(&k));
            }
        }
        let cached = Cached::of(req, kid, renew_at, token.clone());
        map.insert(hash, cached);
        (token, renew_at)
    }
}

impl Cached {
    fn of(req: &Request<'_>, kid: &str, renew_at: u64, token: http::HeaderValue) -> Cached {
        Cached {
            session: req.session.id.as_str().into(),
            app: req.app.into(),
            kid: kid.into(),
            config_tag: req.config_tag,
            renew_at,
            token,
        }
    }

    /// The token of this session, app, key and config, still fresh at `now`.
    fn matches(&self, req: &Request<'_>, kid: &str, now: u64) -> bool {
        *self.session == *req.session.id
            && *self.app == *req.app
            && *self.kid == *kid
            && self.config_tag == req.config_tag
            && now < self.renew_at
    }
}

/// Slots of each thread's front of the token cache.
const FRONT_SLOTS: usize = 16;

/// A token in a thread's front, with the cache it came from.
struct Front {
    owner: usize,
    entry: Cached,
}

thread_local! {
    static FRONT: std::cell::RefCell<[Option<Front>; FRONT_SLOTS]> = const { std::cell::RefCell::new([const { None }; FRONT_SLOTS]) };
}

/// A front slot from the session id (random, and only a verified session's).
fn front_slot(id: &str) -> usize {
    id.bytes().take(2).fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize)) % FRONT_SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::session::{Factors, SessionLevel};
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;

    const NOW: u64 = 1_700_000_000;

    fn session(user: &str) -> Session {
        Session::new(user, "wiki", SessionLevel::BothFactors, NOW, 8 * 3600)
            .proved(Factors::PASSWORD.with(Factors::TOTP))
    }

    fn request<'a>(s: &'a Session, groups: &'a [String]) -> Request<'a> {
        Request {
            session: s,
            app: "wiki",
            issuer: "portcullis",
            email: Some("alice@example.com"),
            groups,
            lifetime_secs: 300,
            config_tag: 1,
        }
    }

    fn b64json(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    /// Checks a token against the JWK set alone, as an app would.
    fn verify(jwks: &str, token: &str) -> serde_json::Value {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = b64json(parts[0]);
        assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("ES256"), Some("JWT")));
        let set: serde_json::Value = serde_json::from_str(jwks).unwrap();
        let jwk = set["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).expect("kid published");
        let mut point = vec![4u8];
        point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
        point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
        let key = VerifyingKey::from_sec1_bytes(&point).unwrap();
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        let signed = &token[..parts[0].len() + 1 + parts[1].len()];
        key.verify(signed.as_bytes(), &sig).expect("signature verifies");
        b64json(parts[1])
    }

    #[test]
    fn a_token_verifies_against_the_published_set_with_the_claims() {
        let keys = IdentityKeys::generate();
        let (s, groups) = (session("alice"), vec!["finance".to_string(), "staff".to_string()]);
        let token = keys.sign(&request(&s, &groups).claims(NOW));
        let claims = verify(keys.jwks(), &token);
        assert_eq!(
            claims,
            serde_json::json!({"iss": "portcullis", "sub": "alice", "aud": "wiki", "email": "alice@example.com",
                "groups": ["finance", "staff"], "amr": ["pwd", "otp", "mfa"], "iat": NOW, "exp": NOW + 300})
        );
        let set: serde_json::Value = serde_json::from_str(keys.jwks()).unwrap();
        let jwk = &set["keys"][0];
        assert_eq!(
            (jwk["alg"].as_str(), jwk["use"].as_str(), jwk["crv"].as_str()),
            (Some("ES256"), Some("sig"), Some("P-256"))
        );
        assert!(jwk.get("d").is_none(), "no secret published");
    }

    #[test]
    fn the_previous_key_stays_published_for_one_rotation() {
        let keys = IdentityKeys::generate();
        let (s, groups) = (session("alice"), vec![]);
        let old = keys.sign(&request(&s, &groups).claims(NOW));
        let next = keys.rotate();
        assert_ne!(next.current_kid(), keys.current_kid());
        verify(next.jwks(), &old);
        verify(next.jwks(), &next.sign(&request(&s, &groups).claims(NOW)));
        let after = next.rotate();
        assert!(!after.jwks().contains(keys.current_kid()), "two rotations retire a key");
    }

    #[test]
    fn the_ring_round_trips_with_the_same_kids_and_refuses_garbage() {
        let keys = IdentityKeys::generate().rotate();
        let back = IdentityKeys::from_json(&keys.to_json()).unwrap();
        assert_eq!(back.jwks(), keys.jwks());
        assert_eq!(back.current_kid(), keys.current_kid());
        for bad in ["", "{}", r#"{"current":"zz"}"#, r#"{"current":"00"}"#, &"{\"current\":\"".repeat(3)] {
            let e = IdentityKeys::from_json(bad).unwrap_err();
            assert!(!e.contains(bad) || bad.is_empty() || bad == "{}", "{e}");
        }
        let zero = format!(r#"{{"current":"{}"}}"#, "0".repeat(64));
        assert!(IdentityKeys::from_json(&zero).is_err(), "zero is no key");
    }

    #[test]
    fn exp_never_passes_the_sessions_end() {
        let s = session("alice");
        let late = NOW + 8 * 3600 - 100;
        assert_eq!(request(&s, &[]).claims(late).exp, s.expires_at);
    }

    #[test]
    fn the_cache_signs_once_per_session_app_and_key_until_renewal() {
        let cache = TokenCache::default();
        let mut keys = IdentityKeys::generate();
        let (alice, bob, groups) = (session("alice"), session("bob"), vec![]);
        let first = cache.token(&keys, &request(&alice, &groups), NOW);
        for i in 0..1_000 {
            assert_eq!(cache.token(&keys, &request(&alice, &groups), NOW + i % 239), first);
        }
        assert_eq!(cache.signed(), 1, "one signature for a thousand requests");
        // Another session, another app, another config: each its own token.
        cache.token(&keys, &request(&bob, &groups), NOW);
        cache.token(&keys, &Request { app: "mail", ..request(&alice, &groups) }, NOW);
        cache.token(&keys, &Request { config_tag: 2, ..request(&alice, &groups) }, NOW);
        assert_eq!(cache.signed(), 4);
        // Within the last minute of its life a token is renewed.
        let renewed = cache.token(&keys, &request(&alice, &groups), NOW + 240);
        assert_ne!(renewed, first);
        assert_eq!(cache.signed(), 5);
        // A rotation: the next request gets a token of the new key.
        keys = keys.rotate();
        let rotated = cache.token(&keys, &request(&alice, &groups), NOW + 241);
        let header = b64json(rotated.to_str().unwrap().split('.').next().unwrap());
        assert_eq!(header["kid"].as_str(), Some(keys.current_kid()));
        assert_eq!(cache.signed(), 6);
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let cache = TokenCache::with_capacity(64);
        let keys = IdentityKeys::generate();
        let groups = vec![];
        for i in 0..500 {
            let s = session(&format!("u{i}"));
            cache.token(&keys, &request(&s, &groups), NOW);
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        // Entries due for renewal go first when a shard fills.
        let later = NOW + 10_000;
        for i in 0..SHARDS * 2 {
            let s = session(&format!("v{i}"));
            cache.token(&keys, &request(&s, &groups), later);
        }
        assert!(cache.len() <= 64);
    }
}
