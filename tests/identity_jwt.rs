//! The signed identity for apps, checked by an independent implementation:
//! the Python block of the README (PyJWT with `cryptography`) verifies the
//! token the demo app received against the published JWK set, before and
//! after `admin rotate-keys`; tokens a client sends itself, in any spelling,
//! never reach the app.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::api::{browser, post};
use common::{Env, PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// Password-only logins (`otp_skip = "always"`), `localhost` as a second
/// host of the wiki (Python reaches the JWK set there), and an open app.
fn apps() -> String {
    common::LOGIN_APPS
        .replace("otp_skip = \"never\"", "otp_skip = \"always\"")
        .replace("hosts = [\"wiki.localhost\"]", "hosts = [\"wiki.localhost\", \"localhost\"]")
        + "\n[[app]]\nname = \"open\"\nhosts = [\"a.open.localhost\"]\nupstream = \"{upstream}\"\npolicy_groups = [\"staff\"]\nbypass = \"always\"\n"
}

/// An Env whose alice has an email and groups.
fn env(identity: &str) -> Env {
    let env = Env::new("", &format!("{identity}\n{}", apps()));
    let users = env.dir.path().join("users.toml");
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str("email = \"alice@example.com\"\ngroups = [\"finance\", \"staff\"]\n");
    std::fs::write(users, text).unwrap();
    env
}

/// A token a client might try: well formed, claiming bob, expired, signed by nobody.
fn forged(kid: &str) -> String {
    let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header = enc(json!({"alg": "ES256", "typ": "JWT", "kid": kid}));
    let claims = enc(json!({"iss": "portcullis", "sub": "bob", "aud": "wiki", "iat": 1, "exp": 2, "amr": ["pwd"]}));
    format!("{header}.{claims}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]))
}

/// The values of every header the app received whose name, lowercased with
/// `_` as `-`, is `name`.
async fn received(c: &Client, env: &Env, host: &str, extra: &[(&str, &str)], name: &str) -> Vec<String> {
    let mut req = c.get(env.url(host, "/app"));
    for (n, v) in extra {
        req = req.header(*n, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().to_ascii_lowercase().replace('_', "-") == name)
        .map(|h| h[1].as_str().unwrap().to_string())
        .collect()
}

/// Runs the README's Python block on `tokens`: per token, the claims or the error's name.
fn python_verify(env: &Env, tokens: &[&str]) -> Vec<Value> {
    let readme = include_str!("../README.md");
    let marker = "<!-- identity-jwt-python: tests/identity_jwt.rs runs this block -->\n```python\n";
    let start = readme.find(marker).expect("the README's Python block") + marker.len();
    let block = &readme[start..start + readme[start..].find("\n```").unwrap()];
    let base = format!("https://localhost:{}", env.https.port());
    let script = block.replace("https://wiki.example.com", &base)
        + r#"

import json, sys
results = []
for token in sys.argv[1:]:
    try:
        results.append({"claims": portcullis_identity(token)})
    except jwt.PyJWTError as e:
        results.append({"error": type(e).__name__})
print(json.dumps(results))
"#;
    let path = env.dir.path().join("verify.py");
    std::fs::write(&path, script).unwrap();
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(&path)
        .args(tokens)
        .env("SSL_CERT_FILE", &env.ca)
        .output()
        .expect("python3 with PyJWT and cryptography (scripts/deps.sh test installs them)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{}", stdout, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap()
}

fn kid_of(token: &str) -> String {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_string()
}

async fn jwks(c: &Client, env: &Env) -> Value {
    let r = c.get(env.url("wiki.localhost", "/.portcullis/jwks.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/jwk-set+json");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn apps_get_a_token_python_verifies_before_and_after_a_rotation() {
    let env = env("");
    let _p = env.start();
    let c = browser(&env, "127.0.0.3");
    let (s, v) = post(&c, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("done")), "{v}");

    let set = jwks(&c, &env).await;
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{set}");
    let kid = keys[0]["kid"].as_str().unwrap().to_string();
    assert_eq!((keys[0]["alg"].as_str(), keys[0]["use"].as_str()), (Some("ES256"), Some("sig")));
    assert!(keys[0].get("d").is_none(), "no private part: {set}");

    // The client's own tokens, in three spellings, are replaced by one fresh token.
    let fake = forged(&kid);
    let spoof = [("X-Portcullis-Jwt", fake.as_str()), ("x_portcullis_jwt", fake.as_str()), ("X-PORTCULLIS_JWT", "x")];
    let tokens = received(&c, &env, "wiki.localhost", &spoof, "x-portcullis-jwt").await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let first = tokens[0].clone();
    assert_ne!(first, fake);
    assert_eq!(kid_of(&first), kid);

    // Signed once: the next request carries the same token.
    let again = received(&c, &env, "wiki.localhost", &[], "x-portcullis-jwt").await;
    assert_eq!(again, std::slice::from_ref(&first), "reused, not signed again");

    // PyJWT verifies it against the published set; the forged one and a tampered one fail.
    let mut tampered = first.clone().into_bytes();
    let at = first.find('.').unwrap() + 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let got = python_verify(&env, &[&first, &fake, &tampered]);
    let claims = &got[0]["claims"];
    assert_eq!(claims["sub"], "alice", "{got:?}");
    assert_eq!((claims["aud"].as_str(), claims["iss"].as_str()), (Some("wiki"), Some("portcullis")));
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["groups"], json!(["finance", "staff"]));
    assert_eq!(claims["amr"], json!(["pwd"]), "a password login");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 300);
    assert!(got[1]["error"].is_string() && got[2]["error"].is_string(), "{got:?}");

    // A rotation: new requests get a token of the new key; the old key stays published.
    let out = common::portcullis(&["admin", "--config", common::path_str(&env.config), "rotate-keys"]);
    assert_eq!(out.0, 0, "{out:?}");
    let rotated: Value = serde_json::from_str(&out.1).unwrap();
    let new_kid = rotated["identity_key"].as_str().unwrap().to_string();
    assert_ne!(new_kid, kid);
    let set = jwks(&c, &env).await;
    let kids: Vec<&str> = set["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, [new_kid.as_str(), kid.as_str()]);
    let after = received(&c, &env, "wiki.localhost", &[], "x-portcullis-jwt").await;
    assert_eq!(after.len(), 1);
    assert_eq!(kid_of(&after[0]), new_kid);
    let got = python_verify(&env, &[&first, &after[0]]);
    assert_eq!(got[0]["claims"]["sub"], "alice", "the old token still verifies: {got:?}");
    assert_eq!(got[1]["claims"]["sub"], "alice", "{got:?}");

    // Without a session (a bypassed app) no token, and the client's copy is gone too.
    let anon = browser(&env, "127.0.0.3");
    let none = received(&anon, &env, "a.open.localhost", &spoof, "x-portcullis-jwt").await;
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_header_is_stripped_in_every_spelling_and_the_default_too() {
    let env = env("[identity]\njwt_header = \"X-Identity-Assertion\"\njwt_lifetime = \"1m\"\njwt_issuer = \"https://sso.example.com\"\n");
    let _p = env.start();
    let c = browser(&env, "127.0.0.3");
    let (s, v) = post(&c, &env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("done")), "{v}");
    let fake = forged("x");
    let spoof = [
        ("X-Identity-Assertion", fake.as_str()),
        ("x_identity_assertion", fake.as_str()),
        ("X-IDENTITY_ASSERTION", "x"),
        ("X-Portcullis-Jwt", fake.as_str()),
    ];
    let tokens = received(&c, &env, "wiki.localhost", &spoof, "x-identity-assertion").await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_ne!(tokens[0], fake);
    let default = received(&c, &env, "wiki.localhost", &spoof, "x-portcullis-jwt").await;
    assert!(default.is_empty(), "{default:?}");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(tokens[0].split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["iss"], "https://sso.example.com");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 60);
    let anon = browser(&env, "127.0.0.3");
    assert!(received(&anon, &env, "a.open.localhost", &spoof, "x-identity-assertion").await.is_empty());
}
