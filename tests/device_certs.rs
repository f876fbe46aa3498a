//! Device certificates through a real portcullis: issuance with
//! `portcullis admin cert issue`, the bundles read by the real tools
//! (`openssl pkcs12`, NSS `pk12util`), single-use download links, and
//! refusals (license full, unknown user) that leave nothing behind.

mod common;

use common::{portcullis, Env, LOGIN_APPS};
use std::path::Path;
use std::process::Command;

/// `[device_certificates]` with `contracted = n`, as the `server_extra` of an [`Env`].
fn section(n: u32) -> String {
    format!("\n[device_certificates]\ncontracted = {n}\nvalidity = \"30d\"\n")
}

fn cert_issue(env: &Env, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["admin", "--config", common::path_str(&env.config), "cert", "issue"];
    all.extend_from_slice(args);
    portcullis(&all)
}

/// The value printed after `label:` by `cert issue`.
fn printed<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(label).map(|r| r.trim_start_matches(':').split_whitespace().next().unwrap_or("")))
        .unwrap_or_else(|| panic!("no `{label}` in:\n{out}"))
}

fn tool(name: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("`{name}` is needed for this test (scripts/deps.sh test): {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn openssl_info(p12: &Path, password: &str) -> (bool, String) {
    let pass = format!("pass:{password}");
    tool("openssl", &["pkcs12", "-info", "-in", common::path_str(p12), "-passin", &pass, "-nokeys"])
}

fn pk12util_list(p12: &Path, password: &str) -> (bool, String) {
    tool("pk12util", &["-l", common::path_str(p12), "-W", password])
}

#[test]
fn bundles_of_both_formats_are_read_by_openssl_and_pk12util_with_the_printed_password() {
    let env = Env::new(&section(5), LOGIN_APPS);
    let _p = env.start();
    let out_dir = tempfile::tempdir().unwrap();
    for (legacy, device, encryption, mac) in [
        (false, "alice-laptop", "PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256", "MAC: sha256"),
        (true, "alice-old-mac", "pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 10000", "MAC: sha1"),
    ] {
        let p12 = out_dir.path().join(format!("{device}.p12"));
        let mut args = vec!["--user", "alice", "--device", device, "--out", common::path_str(&p12)];
        if legacy {
            args.push("--legacy");
        }
        let (code, out, err) = cert_issue(&env, &args);
        assert_eq!(code, 0, "{out}{err}");
        let password = printed(&out, "password");
        assert_eq!(password.len(), 23, "{out}");

        let (ok, info) = openssl_info(&p12, password);
        assert!(ok, "openssl pkcs12 -info refused the bundle:\n{info}");
        assert!(info.contains(encryption), "expected `{encryption}`:\n{info}");
        assert!(info.contains(mac), "expected `{mac}`:\n{info}");
        assert!(info.contains(&format!("CN = {device}")), "{info}");
        assert!(info.contains("Shrouded Keybag"), "{info}");

        let (ok, listed) = pk12util_list(&p12, password);
        assert!(ok, "pk12util -l refused the bundle:\n{listed}");
        assert!(listed.contains(&format!("CN={device}")) && listed.contains("portcullis device CA"), "{listed}");
        assert!(listed.contains("URI: \"portcullis:user:alice\""), "the user is in the SAN:\n{listed}");

        let (ok, info) = openssl_info(&p12, "not-the-password");
        assert!(!ok && info.contains("Mac verify error"), "a wrong password must be refused:\n{info}");
        let (ok, _) = pk12util_list(&p12, "not-the-password");
        assert!(!ok, "pk12util must refuse a wrong password");

        // The PEM files next to the bundle: the certificate verifies against the CA for client auth.
        let stem = out_dir.path().join(device);
        let (crt, ca, key) = (stem.with_extension("crt"), stem.with_extension("ca.crt"), stem.with_extension("key"));
        let (ok, v) = tool(
            "openssl",
            &["verify", "-purpose", "sslclient", "-CAfile", common::path_str(&ca), common::path_str(&crt)],
        );
        assert!(ok, "{v}");
        use std::os::unix::fs::PermissionsExt;
        for private in [&p12, &key] {
            assert_eq!(
                std::fs::metadata(private).unwrap().permissions().mode() & 0o777,
                0o600,
                "{}",
                private.display()
            );
        }
        let (ok, k) = tool("openssl", &["pkey", "-in", common::path_str(&key), "-pubout"]);
        let (_, c) = tool("openssl", &["x509", "-in", common::path_str(&crt), "-pubkey", "-noout"]);
        assert!(ok && k == c, "the key file belongs to the certificate:\n{k}\n{c}");
    }
    // The CA was made at the first start, private, in state_dir.
    use std::os::unix::fs::PermissionsExt;
    for f in ["device-ca.crt", "device-ca.key"] {
        let p = env.dir.path().join("state").join(f);
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600, "{f}");
    }
    // An existing --out is never overwritten, and nothing is issued for it.
    let taken = out_dir.path().join("alice-laptop.p12");
    let (code, _, err) = cert_issue(&env, &["--user", "alice", "--device", "x", "--out", common::path_str(&taken)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists already: nothing was issued"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_download_link_works_once() {
    let env = Env::new(&section(5), LOGIN_APPS);
    let _p = env.start();
    let (code, out, err) = cert_issue(&env, &["--user", "alice", "--device", "alice-phone", "--link"]);
    assert_eq!(code, 0, "{out}{err}");
    let url = printed(&out, "link");
    let password = printed(&out, "password").to_string();
    let prefix = format!("https://wiki.localhost:{}/.portcullis/cert/download?token=", env.https.port());
    assert!(url.starts_with(&prefix), "{url}");
    assert!(out.contains('█') || out.contains('▀') || out.contains('▄'), "a QR code is printed:\n{out}");
    let token = url.trim_start_matches(&prefix).to_string();

    let c = common::api::browser(&env, "127.0.0.3");
    // The page (a link preview may fetch it) does not use the link.
    for _ in 0..2 {
        let page = c.get(url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("Download certificate"), "{html}");
    }
    let ja = c.get(url).header("accept-language", "ja,en;q=0.5").send().await.unwrap().text().await.unwrap();
    assert!(ja.contains("証明書をダウンロード") && ja.contains("lang=\"ja\""), "{ja}");
    let html = c.get(url).send().await.unwrap().text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let download = || {
        c.post(env.url("wiki.localhost", "/.portcullis/cert/download"))
            .form(&[("token", token.as_str()), ("csrf", csrf.as_str())])
            .send()
    };
    let first = download().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "application/x-pkcs12");
    assert!(first.headers()["content-disposition"].to_str().unwrap().contains("alice-phone.p12"));
    let bytes = first.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p12 = dir.path().join("fetched.p12");
    std::fs::write(&p12, &bytes).unwrap();
    let (ok, info) = openssl_info(&p12, &password);
    assert!(ok && info.contains("CN = alice-phone"), "{info}");

    // Used: the POST goes back to the link's page (post/redirect/get), which says so.
    let second = download().await.unwrap();
    assert_eq!(second.status(), 303);
    let again = second.headers()["location"].to_str().unwrap().to_string();
    assert!(again.starts_with("/.portcullis/cert/download?") && again.contains(&token), "{again}");
    let second = c.get(env.url("wiki.localhost", &again)).send().await.unwrap();
    assert_eq!(second.status(), 410);
    assert!(second.text().await.unwrap().contains("no longer works"));
    assert_eq!(c.get(url).send().await.unwrap().status(), 410, "the page says so too");
    let ja = c.get(url).header("accept-language", "ja").send().await.unwrap();
    assert_eq!(ja.status(), 410);
    assert!(ja.text().await.unwrap().contains("このダウンロードリンクは使えません"), "in Japanese too");
    // A link whose certificate was revoked before the download serves nothing.
    let (code, out, err) = cert_issue(&env, &["--user", "alice", "--device", "alice-tablet", "--link"]);
    assert_eq!(code, 0, "{out}{err}");
    let serial = out.split("serial ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let tablet = printed(&out, "link").to_string();
    assert_eq!(c.get(&tablet).send().await.unwrap().status(), 200);
    let (code, o, e) = portcullis(&["admin", "--config", common::path_str(&env.config), "cert", "revoke", &serial]);
    assert_eq!(code, 0, "{o}{e}");
    assert_eq!(c.get(&tablet).send().await.unwrap().status(), 410, "revoked: the link is dropped");
    // A made-up token is no better.
    let forged = format!("{prefix}{}", "ab".repeat(32));
    assert_eq!(c.get(&forged).send().await.unwrap().status(), 410);
}

#[test]
fn a_full_license_and_an_unknown_user_issue_nothing() {
    let env = Env::new(&section(1), LOGIN_APPS);
    let _p = env.start();
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name);

    let (code, o, e) =
        cert_issue(&env, &["--user", "bob", "--device", "bob-laptop", "--out", common::path_str(&out("b.p12"))]);
    assert_eq!(code, 1, "{o}{e}");
    assert!(e.contains("no user named `bob`"), "{e}");
    assert!(!out("b.p12").exists() && !out("b.crt").exists());

    let (code, o, e) =
        cert_issue(&env, &["--user", "alice", "--device", "one", "--out", common::path_str(&out("1.p12"))]);
    assert_eq!(code, 0, "{o}{e}");
    let (code, o, e) =
        cert_issue(&env, &["--user", "alice", "--device", "two", "--out", common::path_str(&out("2.p12"))]);
    assert_eq!(code, 1, "{o}{e}");
    assert!(e.contains("license full: 1 of 1") && e.contains("set-expiring"), "{e}");
    assert!(!out("2.p12").exists() && !out("2.key").exists(), "nothing written");
    let (code, o, e) = cert_issue(&env, &["--user", "alice", "--device", "two", "--link"]);
    assert_eq!(code, 1, "{o}{e}");
    assert!(!o.contains("link:"), "no link for a refused issuance: {o}");
}

#[test]
fn the_section_is_checked_with_its_position() {
    let env = Env::new("\n[device_certificates]\nvalidity = \"2y\"\nca_cert = \"/nonexistent.crt\"\n", LOGIN_APPS);
    let (code, _, err) = portcullis(&["check", "--config", common::path_str(&env.config)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("device_certificates.contracted is required"), "{err}");
    assert!(err.contains("device_certificates.validity"), "{err}");
    assert!(err.contains("give both ca_cert and ca_key"), "{err}");
    assert!(err.contains("portcullis.toml:"), "errors name file:line:col: {err}");
    // A configured CA must be a CA, with its own key: the server certificate is neither.
    let certs = env.dir.path().join("certs");
    let (server_crt, dev_ca) = (certs.join("server.crt"), certs.join("dev-ca.crt"));
    for (cert, key, expected) in [
        (&server_crt, certs.join("server.key"), "is not a CA certificate"),
        (&dev_ca, certs.join("server.key"), "does not belong to the certificate"),
        (&dev_ca, certs.join("missing.key"), "cannot read the device CA key"),
    ] {
        let extra = format!(
            "\n[device_certificates]\ncontracted = 3\nca_cert = \"{}\"\nca_key = \"{}\"\n",
            cert.display(),
            key.display()
        );
        let env = Env::new(&extra, LOGIN_APPS);
        let (code, _, err) = portcullis(&["check", "--config", common::path_str(&env.config)]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(expected) && err.contains("device_certificates.ca_cert"), "{expected}: {err}");
    }
    // Without the section, issuance says how to configure it.
    let env = Env::new("", LOGIN_APPS);
    let _p = env.start();
    let (code, _, err) = cert_issue(&env, &["--user", "alice", "--device", "x", "--link"]);
    assert_eq!(code, 1);
    assert!(err.contains("add a [device_certificates] section"), "{err}");
}

/// The page of a download link and its form's CSRF token, from `env`'s host.
async fn download_page(c: &reqwest::Client, env: &Env, query: &str) -> (u16, String) {
    let r = c.get(env.url("wiki.localhost", &format!("/.portcullis/cert/download?{query}"))).send().await.unwrap();
    let status = r.status().as_u16();
    let html = r.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).map(|s| s.split('"').next().unwrap().to_string());
    (status, csrf.unwrap_or_default())
}

async fn download(c: &reqwest::Client, env: &Env, token: &str, csrf: &str) -> reqwest::Response {
    c.post(env.url("wiki.localhost", "/.portcullis/cert/download"))
        .form(&[("token", token), ("csrf", csrf)])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_on_one_redis_share_the_ca_the_license_and_the_links() {
    let redis = common::redis_server::RedisServer::start();
    let extra = format!("store = \"{}\"\n{}", redis.url(), section(2));
    let (a, b) = (Env::new(&extra, LOGIN_APPS), Env::new(&extra, LOGIN_APPS));
    let _pa = a.start();
    // B gets A's secrets.key (every instance on one store must), A's device CA, and the test server certificate.
    let state = b.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    for f in ["secrets.key", "device-ca.crt", "device-ca.key"] {
        std::fs::copy(a.dir.path().join("state").join(f), state.join(f)).unwrap();
    }
    for f in ["server.crt", "server.key", "dev-ca.crt"] {
        std::fs::copy(a.dir.path().join("certs").join(f), b.dir.path().join("certs").join(f)).unwrap();
    }
    let _pb = b.start();
    assert_eq!(
        std::fs::read(a.dir.path().join("state/device-ca.crt")).unwrap(),
        std::fs::read(state.join("device-ca.crt")).unwrap(),
        "B loaded the copied CA instead of making its own"
    );

    // A link made on A is served by B, once; then A refuses it too.
    let (code, out, err) = cert_issue(&a, &["--user", "alice", "--device", "phone", "--link"]);
    assert_eq!(code, 0, "{out}{err}");
    let token = printed(&out, "link").split("token=").nth(1).unwrap().to_string();
    let password = printed(&out, "password").to_string();
    let c = common::api::browser(&b, "127.0.0.3");
    let (status, csrf_a) = download_page(&c, &a, &format!("token={token}")).await;
    assert_eq!(status, 200);
    let (_, csrf_b) = download_page(&c, &b, &format!("token={token}")).await;
    let r = download(&c, &b, &token, &csrf_b).await;
    assert_eq!(r.status(), 200);
    let dir = tempfile::tempdir().unwrap();
    let p12 = dir.path().join("phone.p12");
    std::fs::write(&p12, r.bytes().await.unwrap()).unwrap();
    assert!(openssl_info(&p12, &password).0);
    let r = download(&c, &a, &token, &csrf_a).await;
    assert_eq!(r.status(), 303, "used on B, so gone on A");
    let page = c.get(a.url("wiki.localhost", r.headers()["location"].to_str().unwrap())).send().await.unwrap();
    assert_eq!(page.status(), 410, "used on B, so gone on A");

    // The license counts the certificates of both instances: 2 contracted.
    let out_b = dir.path().join("b.p12");
    let (code, o, e) = cert_issue(&b, &["--user", "alice", "--device", "laptop", "--out", common::path_str(&out_b)]);
    assert_eq!(code, 0, "{o}{e}");
    let (code, o, e) = cert_issue(&a, &["--user", "alice", "--device", "tablet", "--link"]);
    assert_eq!(code, 1, "{o}{e}");
    assert!(e.contains("license full: 2 of 2"), "{e}");
    // B's certificate verifies against A's CA file: one CA for both.
    let (ok, v) = tool(
        "openssl",
        &[
            "verify",
            "-CAfile",
            common::path_str(&a.dir.path().join("state/device-ca.crt")),
            common::path_str(&dir.path().join("b.crt")),
        ],
    );
    assert!(ok, "{v}");
}

#[test]
fn an_instance_with_a_ca_of_its_own_issues_nothing_until_its_ca_is_adopted() {
    let redis = common::redis_server::RedisServer::start();
    let extra = format!("store = \"{}\"\n{}", redis.url(), section(5));
    let (a, b) = (Env::new(&extra, LOGIN_APPS), Env::new(&extra, LOGIN_APPS));
    let _pa = a.start();
    // B shares A's store and secrets.key but was started without A's device CA: it made its own.
    let state = b.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(a.dir.path().join("state/secrets.key"), state.join("secrets.key")).unwrap();
    let _pb = b.start();
    let dir = tempfile::tempdir().unwrap();
    let out = |n: &str| dir.path().join(n);

    let (code, o, e) =
        cert_issue(&a, &["--user", "alice", "--device", "one", "--out", common::path_str(&out("1.p12"))]);
    assert_eq!(code, 0, "{o}{e}");
    let (code, o, e) =
        cert_issue(&b, &["--user", "alice", "--device", "two", "--out", common::path_str(&out("2.p12"))]);
    assert_eq!(code, 1, "{o}{e}");
    assert!(e.contains("is not the one certificates are issued with") && e.contains("copy device-ca.crt"), "{e}");
    assert!(!out("2.p12").exists());

    // Deliberately: B's CA becomes the one; then A (with the old CA) is refused.
    let (code, o, e) =
        cert_issue(&b, &["--user", "alice", "--device", "two", "--out", common::path_str(&out("2.p12")), "--adopt-ca"]);
    assert_eq!(code, 0, "{o}{e}");
    let (code, _, e) = cert_issue(&a, &["--user", "alice", "--device", "three", "--link"]);
    assert_eq!(code, 1);
    assert!(e.contains("is not the one certificates are issued with"), "{e}");
}

// --- the registry and the license quota (engineer R) ---

/// `portcullis admin cert <args…>` against `env`.
fn cert_cmd(env: &Env, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["admin", "--config", common::path_str(&env.config), "cert"];
    all.extend_from_slice(args);
    portcullis(&all)
}

/// Issues a certificate for `device` of alice into `dir`; returns its serial.
fn issue_serial(env: &Env, dir: &Path, device: &str) -> String {
    let p12 = dir.join(format!("{device}.p12"));
    let (code, out, err) = cert_issue(env, &["--user", "alice", "--device", device, "--out", common::path_str(&p12)]);
    assert_eq!(code, 0, "{out}{err}");
    let serial = out.split("serial ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_default();
    assert_eq!(serial.len(), 32, "{out}");
    serial.to_string()
}

/// The line of `cert list` naming `serial`.
fn listed<'a>(list: &'a str, serial: &str) -> &'a str {
    list.lines().find(|l| l.starts_with(serial)).unwrap_or_else(|| panic!("{serial} not listed:\n{list}"))
}

#[test]
fn registry_operations_and_quota_violations_through_the_cli() {
    // N = 2: two active certificates, floor(2 / 2) = 1 set-expiring use in 350 days.
    // Valid for a year (the default, 397 days), so the 90 days of expiring come first.
    let env = Env::new("\n[device_certificates]\ncontracted = 2\n", LOGIN_APPS);
    let _p = env.start();
    let dir = tempfile::tempdir().unwrap();
    let (s1, s2) = (issue_serial(&env, dir.path(), "laptop"), issue_serial(&env, dir.path(), "phone"));

    let (code, list, err) = cert_cmd(&env, &["list"]);
    assert_eq!(code, 0, "{err}");
    assert!(list.contains("2 certificate(s)"), "{list}");
    let row = listed(&list, &s1);
    assert!(row.contains("active") && row.contains("alice") && row.contains("laptop"), "{row}");
    assert_eq!(row.matches('Z').count(), 2, "issued and stops-working dates, both in UTC: {row}");

    // Replacing the laptop: set-expiring frees its slot at once, and the date is fixed.
    let (code, out, err) = cert_cmd(&env, &["set-expiring", &s1]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is now expiring") && out.contains("keeps working until"), "{out}");
    let until = out.split("until ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    assert!(until.ends_with('Z'), "{until}");
    let (code, _, err) = cert_cmd(&env, &["set-expiring", &s1]);
    assert_eq!(code, 1);
    assert!(err.contains("already expiring") && err.contains("neither extended nor shortened"), "{err}");
    assert!(err.contains(&until), "the refusal names the unchanged date: {err}");
    let s3 = issue_serial(&env, dir.path(), "new-laptop");
    // The API gives the times as numbers: the expiry is exactly 90 days after the set-expiring.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, body) = rt.block_on(env.admin(reqwest::Method::POST, "/cert/list", Some(&env.token())));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let laptop = v["certificates"].as_array().unwrap().iter().find(|c| c["serial"] == s1.as_str()).unwrap();
    let (set_at, expires_at) = (laptop["set_expiring_at"].as_u64().unwrap(), laptop["expires_at"].as_u64().unwrap());
    assert_eq!(expires_at - set_at, 90 * 86_400, "{laptop}");
    assert_eq!(laptop["expires_at_utc"].as_str().unwrap(), until, "the CLI showed the same instant");

    // The one use of the window is spent: the next set-expiring is refused, and changes nothing.
    let (code, _, err) = cert_cmd(&env, &["set-expiring", &s2]);
    assert_eq!(code, 1);
    assert!(err.contains("replacement allowance used up: 1 of 1") && err.contains("next use frees up at"), "{err}");
    let (code, o, err) = cert_issue(&env, &["--user", "alice", "--device", "tablet", "--link"]);
    assert_eq!(code, 1, "{o}");
    assert!(err.contains("license full: 2 of 2"), "{err}");
    let (_, list, _) = cert_cmd(&env, &["list"]);
    assert!(listed(&list, &s2).contains("active"), "{list}");
    assert!(listed(&list, &s1).contains("expiring") && listed(&list, &s1).contains(&until), "{list}");

    // Unknown and malformed serials: clear errors, nothing changed.
    let unknown = "0123456789abcdef0123456789abcdef";
    let (code, _, err) = cert_cmd(&env, &["revoke", unknown]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("no device certificate with serial `{unknown}`")), "{err}");
    let (code, _, err) = cert_cmd(&env, &["expire", "not-a-serial"]);
    assert_ne!(code, 0);
    assert!(err.contains("is not a certificate serial: expected 32 hex digits"), "{err}");
    let (code, _, err) = cert_cmd(&env, &["list", "--expiring-within", "soon"]);
    assert_ne!(code, 0);
    assert!(err.contains("not a duration"), "{err}");
    let (_, after, _) = cert_cmd(&env, &["list"]);
    let rows = |l: &str| l.lines().skip(1).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(rows(&after), rows(&list), "refusals change nothing");

    // Usage: the "certificate replacement function details".
    let (code, usage, err) = cert_cmd(&env, &["usage"]);
    assert_eq!(code, 0, "{err}");
    for line in [
        "contracted:                2",
        "active:                    2",
        "expiring:                  1",
        "can be issued now:         0",
        "set-expiring uses in the last 350 days: 1 of 1",
        "uses left:                 0",
    ] {
        assert!(usage.contains(line), "`{line}` in:\n{usage}");
    }
    assert!(usage.lines().any(|l| l.contains("next use frees up at") && l.ends_with('Z')), "{usage}");

    // Filters: only the expiring laptop stops within 91 days; none within 14; bob has none.
    let (_, soon, _) = cert_cmd(&env, &["list", "--expiring-within", "14d"]);
    assert!(soon.contains("0 certificate(s)"), "{soon}");
    let (_, within, _) = cert_cmd(&env, &["list", "--expiring-within", "91d"]);
    assert!(within.contains("1 certificate(s)") && within.contains(&s1), "{within}");
    let (_, bob, _) = cert_cmd(&env, &["list", "--user", "bob"]);
    assert!(bob.contains("0 certificate(s)"), "{bob}");

    // Expire ends it at once; an ended certificate cannot be changed again. Revoke the phone.
    let (code, out, err) = cert_cmd(&env, &["expire", &s1.to_uppercase()]);
    assert_eq!(code, 0, "serials are accepted in any case: {out}{err}");
    assert!(out.contains("is now expired") && out.contains("no longer works"), "{out}");
    let (code, _, err) = cert_cmd(&env, &["set-expiring", &s1]);
    assert_eq!(code, 1);
    assert!(err.contains("is expired: it no longer works"), "{err}");
    let (code, out, _) = cert_cmd(&env, &["revoke", &s2]);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = cert_cmd(&env, &["revoke", &s2]);
    assert_eq!(code, 1);
    assert!(err.contains("is revoked"), "{err}");

    // The gauges, from the instance's registry snapshot.
    let (_, metrics, _) = portcullis(&["admin", "--config", common::path_str(&env.config), "metrics"]);
    for line in [
        "portcullis_device_certificates{status=\"active\"} 1",
        "portcullis_device_certificates{status=\"expired\"} 1",
        "portcullis_device_certificates{status=\"revoked\"} 1",
        "portcullis_device_certificates_expiring_within_14d 0",
    ] {
        assert!(metrics.contains(line), "`{line}` in:\n{metrics}");
    }
    let (_, list, _) = cert_cmd(&env, &["list"]);
    assert!(listed(&list, &s3).contains("active"), "{list}");
}

#[test]
fn a_set_expiring_through_one_instance_is_seen_by_the_other_on_one_redis() {
    let redis = common::redis_server::RedisServer::start();
    let extra = format!("store = \"{}\"\n{}", redis.url(), section(4));
    let (a, b) = (Env::new(&extra, LOGIN_APPS), Env::new(&extra, LOGIN_APPS));
    let _pa = a.start();
    let state = b.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    for f in ["secrets.key", "device-ca.crt", "device-ca.key"] {
        std::fs::copy(a.dir.path().join("state").join(f), state.join(f)).unwrap();
    }
    let _pb = b.start();
    let dir = tempfile::tempdir().unwrap();
    let serial = issue_serial(&a, dir.path(), "laptop");

    let (code, out, err) = cert_cmd(&b, &["set-expiring", &serial]);
    assert_eq!(code, 0, "set-expiring on B a certificate issued on A: {out}{err}");
    // A's store view and A's in-memory registry (fed by the change feed) both see it.
    let (_, list, _) = cert_cmd(&a, &["list"]);
    assert!(listed(&list, &serial).contains("expiring"), "{list}");
    let (code, _, err) = cert_cmd(&a, &["set-expiring", &serial]);
    assert_eq!(code, 1);
    assert!(err.contains("already expiring"), "{err}");
    let gauge = "portcullis_device_certificates{status=\"expiring\"} 1";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, metrics, _) = portcullis(&["admin", "--config", common::path_str(&a.config), "metrics"]);
        if metrics.contains(gauge) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "A's registry snapshot never saw B's change:\n{metrics}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (_, usage, _) = cert_cmd(&a, &["usage"]);
    assert!(usage.contains("set-expiring uses in the last 350 days: 1 of 2"), "{usage}");
}
