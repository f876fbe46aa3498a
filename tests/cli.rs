//! `portcullis check` and `portcullis decide`: bad input of every kind gets a
//! clear error with file:line:column; good input a summary or a JSON decision.

mod common;

use common::{portcullis, Env, APPS};

fn check(env: &Env) -> (i32, String, String) {
    portcullis(&["check", "--config", common::path_str(&env.config)])
}

#[test]
fn check_accepts_a_good_config() {
    let env = Env::new("", APPS);
    let (code, out, err) = check(&env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok: 2 apps, 1 policy groups, 2 networks"), "{out}");
}

/// Each bad config: what to change, and what the error must say.
#[test]
fn check_names_every_error_with_its_position() {
    let env = Env::new("", APPS);
    let cases: Vec<(String, &str, &str)> = vec![
        (APPS.replace("[networks]", "[networks"), "", "portcullis.toml:"),
        (APPS.replace("bypass = \"always\"", "bypass = \"always\"\nbypas = \"never\""), "", "unknown field `bypas`"),
        (APPS.replace("127.0.0.5/32", "127.0.0.0/33"), "", "127.0.0.0/33"),
        (
            APPS.replace("127.0.0.5/32", "10.0.0.1/8"),
            "",
            r#"networks.lab: "10.0.0.1/8": address has bits set past the /8 prefix; did you mean "10.0.0.0/8"?"#,
        ),
        (APPS.replace("127.0.0.5/32", "127.000.0.5"), "", r#"networks.lab: "127.000.0.5": "127.000.0.5" is not"#),
        (APPS.replace("127.0.0.5/32", "127.0.0.5/x"), "", r#"prefix length "x" is not a whole number"#),
        (
            APPS.to_string(),
            "trusted_proxies = [\"10.0.0.1/8\"]",
            r#"server.trusted_proxies: "10.0.0.1/8": address has bits set"#,
        ),
        (APPS.to_string(), "trusted_proxies = [\"::ffff:0.0.0.0/96\"]", "trusts every address"),
        (APPS.replace("bypass = \"internal_ip\"", "bypass = 'network(\"office\")'"), "", "office"),
        (APPS.replace("bypass = \"internal_ip\"", "bypass = \"internal_ip and (\""), "", "expected"),
        (APPS.replace("*.open.localhost", "wiki.localhost"), "", "already used by app `wiki`"),
        (
            APPS.replace(
                "policy_groups = [\"staff\"]\nbypass = \"always\"",
                "policy_groups = [\"nobody\"]\nbypass = \"always\"",
            ),
            "",
            "no policy group named `nobody`",
        ),
        (APPS.to_string(), "trusted_proxies = [\"0.0.0.0/0\", \"::/0\"]", "trusts every address"),
        (
            APPS.to_string(),
            "[device_certificates]\ncontracted = 5\nlogin_host = \"login.localhost\"",
            "needs login_listen",
        ),
        (APPS.to_string(), "[device_certificates]\ncontracted = 5\nlogin_listen = \"127.0.0.1:nope\"", "login_listen"),
        (
            APPS.to_string(),
            "[device_certificates]\ncontracted = 5\nlogin_listen = \"127.0.0.1:8444\"\nlogin_host = \"bad host/\"",
            "device_certificates.login_host: give a host name",
        ),
        (
            APPS.to_string(),
            "[device_certificates]\ncontracted = 5\nlogin_listen = \"127.0.0.1:8444\"\napp_port = 0",
            "device_certificates.app_port must be between 1 and 65535",
        ),
    ];
    for (apps, server_extra, expected) in cases {
        env.rewrite(server_extra, &apps);
        let (code, _, err) = check(&env);
        assert_eq!(code, 1, "expected failure for `{expected}`: {err}");
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
        let located = err.lines().next().unwrap_or("");
        assert!(located.contains("portcullis.toml:"), "no position in: {located}");
    }
    // Missing certificate files.
    env.rewrite("", APPS);
    let text = std::fs::read_to_string(&env.config).unwrap().replace("server.crt", "missing.crt");
    std::fs::write(&env.config, text).unwrap();
    let (code, _, err) = check(&env);
    assert_eq!(code, 1);
    assert!(err.contains("missing.crt") && err.contains("cannot read"), "{err}");
}

#[test]
fn check_reports_several_errors_at_once() {
    let env = Env::new("", APPS);
    env.rewrite("", &APPS.replace("127.0.0.5/32", "nonsense").replace("bypass = \"always\"", "bypass = \"sometimes\""));
    let (code, _, err) = check(&env);
    assert_eq!(code, 1);
    assert!(err.contains("2 error(s)"), "{err}");
}

/// Runs the binary with `args`; it must succeed and print JSON.
fn json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = portcullis(args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn decide_prints_the_decision() {
    let env = Env::new("", APPS);
    let cfg = common::path_str(&env.config);
    let v = json(&["decide", "--config", cfg, "--host", "wiki.localhost", "--ip", "127.0.0.2"]);
    assert_eq!(v["action"], "forward");
    assert_eq!(v["rule"], "app.wiki.bypass");
    let v = json(&["decide", "--config", cfg, "--host", "wiki.localhost", "--ip", "198.51.100.7"]);
    assert_eq!(v["action"], "challenge_login");
    let v = json(&["decide", "--config", cfg, "--host", "wiki.localhost", "--ip", "198.51.100.7", "--user", "alice"]);
    assert_eq!(v["action"], "challenge_second_factor");
    assert_eq!(v["policy_group"], "staff");
    assert_eq!(v["allowed"], true);
    assert_eq!(v["otp_required"], true);
    assert_eq!(v["rule"], "policy_group.staff.otp_skip (false)");
    let (code, _, err) = portcullis(&["decide", "--config", cfg, "--host", "nope.localhost", "--ip", "127.0.0.1"]);
    assert_eq!(code, 2);
    assert!(err.contains("no app serves host"), "{err}");
}

/// A client at an IPv4-mapped IPv6 address is the IPv4 client, and a network
/// written as a mapped prefix is the IPv4 network.
#[test]
fn decide_reads_ipv4_mapped_addresses_and_prefixes_as_ipv4() {
    let env = Env::new("", APPS);
    let cfg = common::path_str(&env.config);
    let decide = |ip: &str| json(&["decide", "--config", cfg, "--host", "wiki.localhost", "--ip", ip]);
    let v = decide("::ffff:127.0.0.2");
    assert_eq!((v["action"].as_str(), v["rule"].as_str()), (Some("forward"), Some("app.wiki.bypass")));
    assert_eq!(v["networks"], serde_json::json!(["internal"]));
    assert_eq!(v["client_ip"], "127.0.0.2");
    assert_eq!(decide("::127.0.0.2")["action"], "challenge_login", "IPv4-compatible is not mapped");
    env.rewrite("", &APPS.replace("127.0.0.2/32", "::ffff:127.0.0.0/120"));
    let v = decide("127.0.0.9");
    assert_eq!((v["action"].as_str(), v["networks"].clone()), (Some("forward"), serde_json::json!(["internal"])));
    assert_eq!(decide("::ffff:127.0.0.255")["action"], "forward");
    assert_eq!(decide("127.0.1.0")["action"], "challenge_login");
}

#[test]
fn check_warns_when_redis_persistence_is_off() {
    let mut redis = common::redis_server::RedisServer::start();
    let env = Env::new(&format!("store = \"{}\"", redis.url()), APPS);
    let (code, _, err) = check(&env);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("persistence is off"), "{err}");
    redis.stop();
    let durable = common::redis_server::RedisServer::start_on(redis.port, &["--appendonly", "yes"]);
    let (code, _, err) = check(&env);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("persistence"), "AOF on: no warning: {err}");
    drop(durable);
}

/// The annotated examples in config/ stay valid (files they name aside).
#[test]
fn the_example_configs_parse() {
    for example in ["config/portcullis.toml", "config/cluster.toml"] {
        let text = std::fs::read_to_string(example).unwrap();
        let parsed: Result<toml::Value, _> = toml::from_str(&text);
        assert!(parsed.is_ok(), "{example}: {parsed:?}");
        let file: Result<portcullis::config::file::ConfigFile, _> = toml::from_str(&text);
        assert!(file.is_ok(), "{example}: {:?}", file.err());
    }
}

/// The mistakes a new user makes first, each answered by one sentence naming
/// the file, key or address (the real binary, exit code 2).
#[test]
fn first_mistakes_get_one_clear_sentence() {
    let env = Env::new("", APPS);
    let run = |config: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["run", "--config"])
            .arg(config)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // No such config file.
    let (code, err) = run(std::path::Path::new("/nonexistent/portcullis.toml"));
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent/portcullis.toml: cannot read the file"), "{err}");
    // A port already taken: named with its key, at once (no endless retry).
    let taken = std::net::TcpListener::bind(env.https).unwrap();
    let t0 = std::time::Instant::now();
    let (code, err) = run(&env.config);
    assert_eq!(code, Some(2));
    assert!(err.contains(&format!("server.https = \"{}\" is already in use", env.https)), "{err}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    drop(taken);
    // A key that is not the certificate's.
    let other = portcullis::tls::make_dev_certs(&env.dir.path().join("other"), &["localhost".into()]).unwrap();
    let text = std::fs::read_to_string(&env.config).unwrap();
    let key = env.dir.path().join("certs/server.key");
    std::fs::write(&env.config, text.replace(common::path_str(&key), common::path_str(&other.server_key))).unwrap();
    let (code, err) = run(&env.config);
    assert_eq!(code, Some(2));
    assert!(err.contains("server.tls_key does not belong to the certificate in server.tls_cert"), "{err}");
    // A Redis nobody listens on.
    let port = common::free_port();
    env.rewrite(&format!("store = \"redis://127.0.0.1:{port}/\""), APPS);
    let (code, err) = run(&env.config);
    assert_eq!(code, Some(2));
    assert!(err.contains(&format!("cannot reach Redis at redis://127.0.0.1:{port}/ (server.store)")), "{err}");
}

#[test]
fn version_completions_and_a_piped_password() {
    let (code, out, _) = portcullis(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!("portcullis {} (commit ", env!("CARGO_PKG_VERSION"))), "{out}");
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = portcullis(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("hash-password") && out.contains("approver"), "{shell}: {out}");
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"correct horse\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("$argon2id$"));
}
