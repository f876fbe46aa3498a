//! The Redis store over TLS with an ACL user: a real `redis-server` serving
//! TLS only, its own CA, an optional (or required) client certificate. And
//! the one sentence each refusal gets at start-up: wrong credentials, an
//! untrusted server certificate, an ACL without a command the store needs
//! (from the library, and from `portcullis check` / `portcullis run`).

mod common;

use common::redis_server::{RedisServer, RedisTlsFiles};
use common::{portcullis, Env, APPS};
use portcullis::store::redis::{check_access, AccessError, RedisOptions, RedisStore, RedisTls};
use portcullis::store::{Change, Store};
use std::path::Path;
use std::time::Duration;

const PREFIX: &str = "pc:";

/// `app` may do what the store needs (and nothing dangerous); `noeval` may not run EVALSHA.
fn add_users(server: &RedisServer) {
    let mut raw = server.raw();
    let rules = ["on", ">app-pw", "~pc:*", "&pc:*", "+@all", "-@dangerous"];
    redis::cmd("ACL").arg("SETUSER").arg("app").arg(&rules).query::<()>(&mut raw).unwrap();
    redis::cmd("ACL").arg("SETUSER").arg("noeval").arg(&rules).arg("-evalsha").query::<()>(&mut raw).unwrap();
}

fn options(server: &RedisServer, user: &str, password: &str, ca: &Path) -> RedisOptions {
    RedisOptions {
        username: Some(user.into()),
        password: Some(password.into()),
        key_prefix: PREFIX.into(),
        tls: RedisTls { ca_file: Some(ca.to_path_buf()), client_cert: None },
        ..RedisOptions::new(server.url(), [7; 32])
    }
}

fn refused(opts: &RedisOptions) -> String {
    match check_access(opts) {
        Err(AccessError::Refused(s)) => s,
        other => panic!("expected a refusal, got {:?}", other.map(drop)),
    }
}

async fn connect(opts: RedisOptions) -> RedisStore {
    tokio::task::spawn_blocking(move || RedisStore::connect(opts)).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_over_tls_with_an_acl_user() {
    let server = RedisServer::start_tls("optional", &[]);
    add_users(&server);
    let opts = options(&server, "app", "app-pw", &server.tls().ca);
    check_access(&opts).expect("the app user may do what the store needs");
    let one = connect(opts.clone()).await;
    let two = connect(opts).await;
    let mut rx = two.subscribe();

    one.put_challenge("k", b"v", Duration::from_secs(60)).await.unwrap();
    assert_eq!(two.take_challenge("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(one.count("n", Duration::from_secs(60)).await.unwrap(), 1);
    one.sign_out_everywhere("zoe", 9).await.unwrap();
    let change = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a change in time").unwrap();
    assert_eq!(change, Change::SessionsNotBefore { user: "zoe".into(), at: 9 });
    one.revoke_session("sid", 4_000_000_000).await.unwrap();
    assert!(two.revocations().await.unwrap().revoked_sessions.contains("sid"));

    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut server.raw()).unwrap();
    assert!(!keys.is_empty() && keys.iter().all(|k| k.starts_with(PREFIX)), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_client_certificate_is_presented_when_given() {
    let server = RedisServer::start_tls("yes", &[]);
    add_users(&server);
    let mut opts = options(&server, "app", "app-pw", &server.tls().ca);
    let without = refused(&opts);
    assert!(without.starts_with("TLS: "), "{without}");
    assert!(without.contains("redis.client_cert"), "{without}");

    let tls = server.tls();
    opts.tls.client_cert = Some((tls.client_cert.clone(), tls.client_key.clone()));
    check_access(&opts).expect("with the client certificate");
    let store = connect(opts).await;
    store.put_challenge("k", b"v", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.take_challenge("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn refusals_get_one_sentence_each() {
    let server = RedisServer::start_tls("optional", &[]);
    add_users(&server);
    let ca = &server.tls().ca;

    let wrong = refused(&options(&server, "app", "not-the-password", ca));
    assert!(wrong.starts_with("redis refused the credentials for user `app`: WRONGPASS"), "{wrong}");
    let unknown = refused(&options(&server, "nobody", "app-pw", ca));
    assert!(unknown.starts_with("redis refused the credentials for user `nobody`: WRONGPASS"), "{unknown}");

    let stranger = RedisTlsFiles::new();
    let untrusted = refused(&options(&server, "app", "app-pw", &stranger.ca));
    let expected =
        format!("TLS: the Redis server's certificate is not trusted by redis.ca_file `{}`", stranger.ca.display());
    assert!(untrusted.starts_with(&expected), "{untrusted}");

    let no_eval = refused(&options(&server, "noeval", "app-pw", ca));
    assert_eq!(no_eval, "redis user `noeval` may not run EVALSHA (check its ACL)");

    let mut elsewhere = options(&server, "app", "app-pw", ca);
    elsewhere.key_prefix = "other:".into();
    let keys = refused(&elsewhere);
    assert!(keys.starts_with("redis user `app` may not use the keys under `other:`"), "{keys}");
}

/// `portcullis check` fails with the sentence; `portcullis run` says it and stops.
#[test]
fn check_and_run_say_why_redis_refused() {
    let server = RedisServer::start_tls("optional", &[]);
    add_users(&server);
    let tls = server.tls();
    let env = Env::new(&format!("store = \"{}\"", server.url()), APPS);
    let password = env.dir.path().join("redis.password");
    let configure = |user: &str, pw: &str| {
        std::fs::write(&password, pw).unwrap();
        let redis = format!(
            "[redis]\nusername = \"{user}\"\npassword_file = \"{}\"\nca_file = \"{}\"\nkey_prefix = \"{PREFIX}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n",
            password.display(),
            tls.ca.display(),
            tls.client_cert.display(),
            tls.client_key.display()
        );
        env.rewrite(&format!("store = \"{}\"", server.url()), &format!("{redis}\n{APPS}"));
    };
    let config = common::path_str(&env.config);

    configure("app", "app-pw");
    let (code, _, err) = portcullis(&["check", "--config", config]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("could not check the Redis server's persistence"), "CONFIG is @dangerous: {err}");

    configure("app", "wrong");
    let (code, _, err) = portcullis(&["check", "--config", config]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error: redis refused the credentials for user `app`: WRONGPASS"), "{err}");

    configure("noeval", "app-pw");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["run", "--config", config])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("redis user `noeval` may not run EVALSHA (check its ACL)"), "{err}");
}

/// The `[redis]` TLS keys are checked with the config: TLS files only with
/// `rediss://`, a client certificate with its key, files that parse.
#[test]
fn check_names_bad_redis_tls_keys() {
    let env = Env::new("store = \"redis://127.0.0.1:1\"", APPS);
    let config = common::path_str(&env.config);
    let ca = env.ca.display().to_string();
    let key = env.dir.path().join("certs/server.key").display().to_string();
    let crt = env.dir.path().join("certs/server.crt").display().to_string();
    let cases = [
        ("redis://127.0.0.1:1", format!("ca_file = \"{ca}\""), "redis.ca_file needs a `rediss://` URL in server.store"),
        ("rediss://127.0.0.1:1", format!("client_cert = \"{crt}\""), "redis.client_cert needs redis.client_key"),
        ("rediss://127.0.0.1:1", format!("client_key = \"{key}\""), "redis.client_key needs redis.client_cert"),
        ("rediss://127.0.0.1:1", format!("ca_file = \"{key}\""), "redis.ca_file: "),
        (
            "rediss://127.0.0.1:1",
            format!("client_cert = \"{ca}\"\nclient_key = \"{key}\""),
            "redis.client_key does not belong to the certificate in redis.client_cert",
        ),
        ("rediss://127.0.0.1:1", "username = \"two words\"".into(), "redis.username must be 1 to 128 characters"),
    ];
    for (url, redis, expected) in cases {
        env.rewrite(&format!("store = \"{url}\""), &format!("[redis]\n{redis}\n{APPS}"));
        let (code, _, err) = portcullis(&["check", "--config", config]);
        assert_eq!(code, 1, "{redis}: {err}");
        assert!(err.contains(expected), "{redis}: expected `{expected}` in {err}");
    }
}
