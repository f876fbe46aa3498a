//! The admin console and its JSON twin, against one running portcullis shared
//! by the tests of this binary, with a master (mia), two admins (adam, ada)
//! and general users. Each test uses users of its own.
//!
//! - An administrator walks the console in headless Chromium: signs in with
//!   a TOTP code from `oathtool`, sees the locked users, unlocks two at once
//!   with the confirmation password (a wrong one first: nothing changes), reads
//!   the per-user results, cannot unlock themselves, and, once locked, sees who
//!   can unlock them.
//! - The rules through the API: a general user gets 403 on every console page
//!   and every admin API call; no confirmation, a wrong one, acting on oneself,
//!   an admin revoking a master all change nothing; forms without the CSRF
//!   token and cross-site JSON are refused; each act is in the audit log with
//!   its actor, role, target user, result and source address.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::api::{browser, code, post};
use common::{portcullis, Env, HASH, PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use webdriver::{require_tool, Browser};

/// 127.0.0.1 (Chromium) and 127.0.0.2 (API clients) are internal, where
/// authenticators may be enrolled; 127.0.0.3 is outside (the lockouts come from there).
fn apps() -> String {
    let apps =
        common::LOGIN_APPS.replace("internal = [\"127.0.0.2/32\"]", "internal = [\"127.0.0.1/32\", \"127.0.0.2/32\"]");
    format!("[lockout]\nmax_failures = 3\nper_address_max = 1000\n\n[portal]\ncontact = \"IT desk, ext. 1234\"\n{apps}")
}

const USERS: [(&str, &str); 8] = [
    ("mia", "master"),
    ("adam", "admin"),
    ("ada", "admin"),
    ("alice", "user"),
    ("bob", "user"),
    ("carol", "user"),
    ("dave", "user"),
    ("erin", "user"),
];

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let env = common::on_binary_thread(|| Env::new("\n[device_certificates]\ncontracted = 10\n", &apps()));
        let mut users = String::new();
        for (name, role) in USERS {
            users.push_str(&format!(
                "[[user]]\nusername = \"{name}\"\npassword = \"{HASH}\"\npolicy_group = \"staff\"\nrole = \"{role}\"\n"
            ));
        }
        std::fs::write(env.dir.path().join("users.toml"), users).unwrap();
        let audit = env.dir.path().join("audit.jsonl");
        let text = std::fs::read_to_string(&env.config).unwrap();
        std::fs::write(&env.config, format!("{text}\n[log]\naudit_file = \"{}\"\n", audit.display())).unwrap();
        env.start_for_binary();
        env
    })
}

/// Enrolls `user`'s authenticator from the internal address; returns the
/// signed-in client and the key (base32).
async fn enrolled(env: &Env, user: &str) -> (Client, String) {
    let c = browser(env, "127.0.0.2");
    let (_, v) = post(&c, env, "/.portcullis/api/login", json!({"username": user, "password": PASSWORD})).await;
    assert_eq!(v["next"], "enroll_totp", "{user}: {v}");
    let (_, e) = post(&c, env, "/.portcullis/api/totp/enroll", json!({})).await;
    let key = e["secret"].as_str().unwrap().to_string();
    let (_, v) = post(&c, env, "/.portcullis/api/totp/enroll/confirm", json!({"code": code(&key, 0)})).await;
    assert_eq!(v["next"], "done", "{user}: {v}");
    (c, key)
}

/// Three wrong passwords from outside lock `user`.
async fn lock(env: &Env, user: &str) {
    let c = browser(env, "127.0.0.3");
    for _ in 0..3 {
        post(&c, env, "/.portcullis/api/login", json!({"username": user, "password": "wrong"})).await;
    }
    assert!(locked(env).await.contains(&user.to_string()), "{user} is locked");
}

/// The locked users, as the token sees them.
async fn locked(env: &Env) -> Vec<String> {
    let (s, body) = env.admin(reqwest::Method::GET, "/locked", Some(&env.token())).await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["locked"].as_array().unwrap().iter().map(|l| l["user"].as_str().unwrap().to_string()).collect()
}

async fn get(c: &Client, env: &Env, path: &str) -> (StatusCode, String) {
    let r = c.get(env.url("wiki.localhost", path)).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// The CSRF token of a portal page's form.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

async fn form(c: &Client, env: &Env, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let r = c.post(env.url("wiki.localhost", path)).form(fields).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

const PAGES: [&str; 8] = [
    "/.portcullis/admin/",
    "/.portcullis/admin/locked",
    "/.portcullis/admin/revoke",
    "/.portcullis/admin/certs",
    "/.portcullis/admin/policy",
    "/.portcullis/admin/audit",
    "/.portcullis/admin",
    "/.portcullis/admin/no-such-page",
];

const API_CALLS: [(&str, &str); 14] = [
    ("GET", "locked"),
    ("GET", "users"),
    ("POST", "users"),
    ("POST", "unlock"),
    ("POST", "revoke-totp"),
    ("POST", "sign-out"),
    ("POST", "enroll-link"),
    ("POST", "cert/list"),
    ("GET", "cert/usage"),
    ("POST", "cert/revoke"),
    ("POST", "decide"),
    ("POST", "audit"),
    ("POST", "reload"),
    ("GET", "store/export"),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_general_user_gets_403_on_every_console_page_and_admin_api_call() {
    let env = env();
    let (dave, _) = enrolled(env, "dave").await;
    for page in PAGES {
        let (s, html) = get(&dave, env, page).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{page}: {html}");
        assert!(html.contains("Administrators only") || html.contains("管理者専用"), "{page}: {html}");
    }
    // A form posted with a valid token (from the dashboard) is refused too.
    let (_, dashboard) = get(&dave, env, "/.portcullis/").await;
    let csrf = csrf_of(&dashboard);
    for action in ["unlock", "revoke-totp", "sign-out", "cert/change", "cert/issue"] {
        let fields = [("csrf", csrf.as_str()), ("user", "alice"), ("confirm_password", PASSWORD)];
        let (s, _) = form(&dave, env, &format!("/.portcullis/admin/{action}"), &fields).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{action}");
    }
    for (method, call) in API_CALLS {
        let url = env.url("wiki.localhost", &format!("/.portcullis/api/admin/{call}"));
        let r = match method {
            "GET" => dave.get(url).send().await.unwrap(),
            _ => dave.post(url).json(&json!({"user": "alice", "confirm_password": PASSWORD})).send().await.unwrap(),
        };
        let status = r.status();
        let v: Value = r.json().await.unwrap_or_default();
        assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{method} {call}: {v}");
    }
    // Without a session: pages send to the sign-in (and back here), calls answer 401.
    let nobody = browser(env, "127.0.0.2");
    let r = nobody.get(env.url("wiki.localhost", "/.portcullis/admin/locked")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/.portcullis/login?") && to.contains("rd=/.portcullis/admin/locked"), "{to}");
    let r = nobody.get(env.url("wiki.localhost", "/.portcullis/api/admin/locked")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rules_hold_through_the_api_and_every_act_is_audited() {
    let env = env();
    let (ada, _) = enrolled(env, "ada").await;
    lock(env, "carol").await;
    let call = |path: &str, body: Value| {
        let ada = ada.clone();
        let url = env.url("wiki.localhost", &format!("/.portcullis/api/admin/{path}"));
        async move {
            let r = ada.post(url).json(&body).send().await.unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap_or_default())
        }
    };
    // No confirmation, then a wrong one: nothing changes.
    let (s, v) = call("unlock", json!({"user": "carol"})).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("confirmation_required")), "{v}");
    let (s, v) = call("unlock", json!({"user": "carol", "confirm_password": "not-it"})).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("wrong_confirmation")), "{v}");
    assert!(locked(env).await.contains(&"carol".to_string()), "a wrong confirmation changes nothing");
    // Nobody acts on themselves; an admin does not shut a master out.
    let (s, v) = call("unlock", json!({"user": "ada", "confirm_password": PASSWORD})).await;
    assert_eq!((s, v["results"][0]["reason"].as_str()), (StatusCode::FORBIDDEN, Some("yourself")), "{v}");
    let (s, v) = call("revoke-totp", json!({"user": "mia", "confirm_password": PASSWORD})).await;
    assert_eq!((s, v["results"][0]["reason"].as_str()), (StatusCode::FORBIDDEN, Some("master_only")), "{v}");
    let (s, v) = call("reload", json!({})).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("token_only")), "{v}");
    // A console form without its CSRF token, and JSON from another site: refused, nothing changes.
    let (s, _) =
        form(&ada, env, "/.portcullis/admin/unlock", &[("user", "carol"), ("confirm_password", PASSWORD)]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = form(
        &ada,
        env,
        "/.portcullis/admin/unlock",
        &[("csrf", "forged"), ("user", "carol"), ("confirm_password", PASSWORD)],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = ada
        .post(env.url("wiki.localhost", "/.portcullis/api/admin/unlock"))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"user": "carol", "confirm_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(locked(env).await.contains(&"carol".to_string()), "refused forms change nothing");
    // Done right: unlocked, with the result per user.
    let (s, v) = call("unlock", json!({"users": ["carol", "erin"], "confirm_password": PASSWORD})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0], json!({"user": "carol", "result": "unlocked", "ok": true, "ready_at": null}));
    assert_eq!(v["results"][1]["result"], "not_locked");
    assert!(!locked(env).await.contains(&"carol".to_string()));
    // Revocation tells when the user may enroll again; the user list shows the wait.
    let (s, v) = call("revoke-totp", json!({"user": "erin", "confirm_password": PASSWORD})).await;
    assert_eq!((s, v["results"][0]["result"].as_str()), (StatusCode::OK, Some("revoked")), "{v}");
    assert!(v["results"][0]["ready_at"].as_u64().unwrap() > common::api::now(), "{v}");
    let (s, v) = call("users", json!({"q": "erin"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["users"][0]["cooldown_until"].as_u64().is_some(), "{v}");
    assert_eq!(v["users"][0]["role"], "user");
    // The token (the CLI) acts the same way, as `token:admin`.
    lock(env, "carol").await;
    let (code_, out, err) = portcullis(&["admin", "--config", common::path_str(&env.config), "unlock", "carol"]);
    assert_eq!(code_, 0, "{out}{err}");

    // The audit log holds each act: actor, role, action, target, result, source.
    let lines = audit_lines(env, |l| l.iter().filter(|l| l["event"] == "admin_action").count() >= 7).await;
    let acts: Vec<&Value> = lines.iter().filter(|l| l["event"] == "admin_action").collect();
    let find = |actor: &str, action: &str, target: &str, result: &str| {
        acts.iter()
            .any(|l| l["actor"] == actor && l["action"] == action && l["user"] == target && l["result"] == result)
    };
    assert!(find("ada", "unlock", "carol", "unlocked"), "{acts:?}");
    assert!(find("ada", "unlock", "ada", "yourself"), "{acts:?}");
    assert!(find("ada", "revoke_totp", "mia", "master_only"), "{acts:?}");
    assert!(find("ada", "revoke_totp", "erin", "revoked"), "{acts:?}");
    assert!(find("token:admin", "unlock", "carol", "unlocked"), "{acts:?}");
    let ada_unlock = acts.iter().find(|l| l["actor"] == "ada" && l["user"] == "carol").unwrap();
    assert_eq!((ada_unlock["role"].as_str(), ada_unlock["from"].as_str()), (Some("admin"), Some("127.0.0.2")));
    assert!(lines.iter().any(|l| l["event"] == "admin_confirmation_failed" && l["actor"] == "ada"));
    assert!(!lines.iter().any(|l| l.to_string().contains(PASSWORD)), "no password in the audit log");
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_are_issued_and_changed_in_the_console() {
    let env = env();
    let (mia, _) = enrolled(env, "mia").await;
    let (_, page) = get(&mia, env, "/.portcullis/admin/certs?lang=en").await;
    assert!(page.contains("License usage") && page.contains("Replacement allowance"), "{page}");
    let csrf = csrf_of(&page);
    // Issue: a single-use download link and the bundle's password, once.
    let mut serials = Vec::new();
    for (user, device) in [("carol", "carol-laptop"), ("adam", "adam-pc"), ("mia", "mia-pc")] {
        let fields = [("csrf", csrf.as_str()), ("user", user), ("device", device)];
        let (s, html) = form(&mia, env, "/.portcullis/admin/cert/issue?lang=en", &fields).await;
        assert_eq!(s, StatusCode::OK, "{html}");
        assert!(html.contains("/.portcullis/cert/download?token="), "{html}");
        assert!(html.contains("id=\"bundle-password\""), "{html}");
        let (_, list) = env.admin(reqwest::Method::POST, "/cert/list", Some(&env.token())).await;
        let list: Value = serde_json::from_str(&list).unwrap();
        let serial = list["certificates"].as_array().unwrap().iter().find(|c| c["device"] == device).unwrap()["serial"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(html.contains(&serial), "the result names the serial: {html}");
        serials.push(serial);
    }
    let (_, page) = get(&mia, env, "/.portcullis/admin/certs?lang=en").await;
    assert!(serials.iter().all(|s| page.contains(s.as_str())), "every certificate is listed: {page}");
    // Set as expiring two at once (the master on an admin's: allowed); her own is refused.
    let change = |serials: Vec<&str>, password: &str| {
        let mut fields = vec![("csrf", csrf.clone()), ("act", "set-expiring".to_string())];
        fields.extend(serials.into_iter().map(|s| ("serial", s.to_string())));
        fields.push(("confirm_password", password.to_string()));
        let mia = mia.clone();
        async move {
            let r = mia
                .post(env.url("wiki.localhost", "/.portcullis/admin/cert/change?lang=en"))
                .form(&fields)
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (s, html) = change(vec![&serials[0], &serials[1]], "wrong").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("Nothing was changed"), "{html}");
    let (s, html) = change(vec![&serials[0], &serials[1], &serials[2]], PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let rows: Vec<&str> = html.lines().filter(|l| l.contains("<tr><td>")).collect();
    assert_eq!(rows.len(), 3, "{html}");
    assert!(rows[0].contains("carol") && rows[0].contains("done"), "{rows:?}");
    assert!(rows[1].contains("adam") && rows[1].contains("done"), "{rows:?}");
    assert!(rows[2].contains("mia") && rows[2].contains("own account"), "{rows:?}");
    let (_, list) = env.admin(reqwest::Method::POST, "/cert/list", Some(&env.token())).await;
    let list: Value = serde_json::from_str(&list).unwrap();
    let status = |serial: &str| {
        list["certificates"].as_array().unwrap().iter().find(|c| c["serial"] == serial).unwrap()["status"].clone()
    };
    assert_eq!(
        (status(&serials[0]), status(&serials[1]), status(&serials[2])),
        (json!("expiring"), json!("expiring"), json!("active"))
    );
}

/// The audit file's lines once `ready` holds for them (events are written as they happen).
async fn audit_lines(env: &Env, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(env.dir.path().join("audit.jsonl")).unwrap_or_default();
        let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        if ready(&lines) || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_unlocks_two_users_in_the_console() {
    require_tool("oathtool", "oathtool");
    let env = env();
    let (_, key) = enrolled(env, "adam").await;
    lock(env, "alice").await;
    lock(env, "bob").await;
    let b = Browser::start("en", "MAP wiki.localhost 127.0.0.1").await;
    let shots = screenshot_dir();

    // The console sends a browser without a session to sign in, and back.
    b.goto(&env.url("wiki.localhost", "/.portcullis/admin/locked")).await;
    b.find("input#username").await.send_keys("adam").await;
    b.find("input#password").await.send_keys(PASSWORD).await;
    go(&b, "main form button[type=submit]").await;
    // The code of the next step: the enrollment used this one.
    b.find("input#code").await.send_keys(&code(&key, 30)).await;
    go(&b, "main form button[type=submit]").await;
    assert!(b.current_url().await.contains("/.portcullis/admin/locked"), "{}", b.current_url().await);
    assert_eq!(b.find("h1").await.text().await, "Locked users");
    let rows = b.find("main table").await.text().await;
    assert!(rows.contains("alice") && rows.contains("bob"), "{rows}");
    b.screenshot(&shots.join("console-1-locked.png")).await;

    // A wrong confirmation password: nothing changes.
    check(&b, "alice").await;
    check(&b, "bob").await;
    b.find("input#confirm_password").await.send_keys("not-my-password").await;
    go(&b, "main form button[type=submit]").await;
    assert!(b.find("p.error").await.text().await.contains("Nothing was changed"));
    let still = locked(env).await;
    assert!(still.contains(&"alice".into()) && still.contains(&"bob".into()), "{still:?}");

    // Both at once with the right one: the result per user.
    b.goto(&env.url("wiki.localhost", "/.portcullis/admin/locked?lang=en")).await;
    check(&b, "alice").await;
    check(&b, "bob").await;
    b.find("input#confirm_password").await.send_keys(PASSWORD).await;
    go(&b, "main form button[type=submit]").await;
    assert_eq!(b.find("h1").await.text().await, "Result");
    let results = b.find("main table").await.text().await;
    for user in ["alice", "bob"] {
        let line = results.lines().find(|l| l.contains(user)).unwrap_or_else(|| panic!("{results}"));
        assert!(line.contains("unlocked"), "{results}");
    }
    b.screenshot(&shots.join("console-2-result.png")).await;
    let now_locked = locked(env).await;
    assert!(!now_locked.contains(&"alice".into()) && !now_locked.contains(&"bob".into()), "{now_locked:?}");

    // Unlocking oneself is refused even when the form is made by hand (the
    // token taken from the revocation page, which always has a form).
    b.goto(&env.url("wiki.localhost", "/.portcullis/admin/revoke?lang=en")).await;
    b.find("h1").await;
    b.mark_page().await;
    b.execute(
        "const f = document.createElement('form');
         f.method = 'post'; f.action = '/.portcullis/admin/unlock?lang=en';
         for (const [n, v] of [['csrf', document.querySelector('input[name=csrf]').value],
                               ['user', 'adam'], ['confirm_password', arguments[0]]]) {
           const i = document.createElement('input'); i.type = 'hidden'; i.name = n; i.value = v; f.appendChild(i);
         }
         document.body.appendChild(f); f.submit();",
        json!([PASSWORD]),
    )
    .await;
    b.wait_for_new_page().await;
    let refused = b.find("main table").await.text().await;
    assert!(refused.contains("adam") && refused.contains("nobody acts on their own account"), "{refused}");

    // Locked, an administrator sees who can unlock them (and no box to check).
    lock(env, "adam").await;
    b.goto(&env.url("wiki.localhost", "/.portcullis/admin/locked?lang=ja")).await;
    assert_eq!(b.find("h1").await.text().await, "ロック中のユーザー");
    let table = b.find("main table").await.text().await;
    let me = table.lines().find(|l| l.contains("adam")).unwrap_or_else(|| panic!("{table}"));
    assert!(me.contains("ほかの管理者") && me.contains("ada") && me.contains("mia"), "{me}");
    assert!(b.find_all("input[type=checkbox][value=adam]").await.is_empty());
    b.screenshot(&shots.join("console-3-self-locked-ja.png")).await;
    // Another admin unlocks them (through the CLI's token here).
    let (code_, out, err) = portcullis(&["admin", "--config", common::path_str(&env.config), "unlock", "adam"]);
    assert_eq!(code_, 0, "{out}{err}");
}

async fn check(b: &Browser, user: &str) {
    b.find(&format!("input[type=checkbox][value={user}]")).await.click().await;
}

async fn go(b: &Browser, css: &str) {
    b.mark_page().await;
    b.find(css).await.click().await;
    b.wait_for_new_page().await;
}

fn screenshot_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
