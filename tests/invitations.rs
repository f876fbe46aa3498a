//! Enrollment invitations by email, end to end: a real SMTP server on
//! loopback (aiosmtpd), the delivered message read back as a mail client
//! reads it, the link followed in headless Chromium, the PIN entered, and the
//! enrollment finished with codes from `oathtool`. Then what goes wrong:
//! three wrong PINs void the link, a used or expired link says so, an SMTP
//! server that refuses or is down leaves the invitation pending and reported,
//! and resend delivers a new link. Notices reach the user too.
//!
//! One portcullis and one SMTP server for the binary; the tests take turns
//! (one reloads the config to take the mail server away for a while).

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::api::{browser, code};
use common::smtp::{SmtpOptions, SmtpServer};
use common::{free_port, Env, HASH, PASSWORD};
use portcullis::challenge::pages::{text, Lang, Text};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use webdriver::{require_tool, Browser};

struct Shared {
    env: Env,
    smtp: SmtpServer,
    base: String,
}

/// Inside is 127.0.0.2 only: Chromium (127.0.0.1) and 127.0.0.3 are outside,
/// where only an invitation lets a user enroll.
fn apps() -> String {
    let apps =
        common::LOGIN_APPS.replace("enroll_when = \"internal_ip\"", "enroll_when = \"internal_ip or invitation\"");
    format!("[lockout]\nmax_failures = 5\nper_address_max = 1000\n\n[portal]\ncontact = \"IT desk, ext. 1234\"\n{apps}")
}

fn mail_section(port: u16, ttl: &str) -> String {
    format!(
        "\n[mail]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nfrom_address = \"portcullis@example.com\"\n\
         from_name = \"情報システム部\"\ntimeout = \"3s\"\ninvitation_ttl = \"{ttl}\"\n"
    )
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let smtp = common::on_binary_thread(|| {
            SmtpServer::start(SmtpOptions { refuse: Some("nobody@example.com".into()), ..Default::default() })
        });
        let env = common::on_binary_thread(|| Env::new("", &apps()));
        let users = [
            ("alice", "ja", "user"),
            ("bob", "en", "user"),
            ("carol", "en", "user"),
            ("dave", "en", "user"),
            ("erin", "en", "user"),
            ("mia", "en", "master"),
        ];
        let mut file = String::new();
        for (name, lang, role) in users {
            file.push_str(&format!(
                "[[user]]\nusername = \"{name}\"\npassword = \"{HASH}\"\npolicy_group = \"staff\"\n\
                 email = \"{name}@example.com\"\nlang = \"{lang}\"\nrole = \"{role}\"\n"
            ));
        }
        std::fs::write(env.dir.path().join("users.toml"), file).unwrap();
        let base = std::fs::read_to_string(&env.config).unwrap();
        std::fs::write(&env.config, format!("{base}{}", mail_section(smtp.port(), "72h"))).unwrap();
        env.start_for_binary();
        Shared { env, smtp, base }
    })
}

/// The tests take turns: one of them takes the mail server away for a while.
async fn turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

fn reconfigure(s: &Shared, mail_port: u16, ttl: &str) {
    std::fs::write(&s.env.config, format!("{}{}", s.base, mail_section(mail_port, ttl))).unwrap();
    let (code_, out, err) = admin(&s.env, &["reload"], None);
    assert_eq!(code_, 0, "{out}{err}");
}

/// `portcullis admin …` with `stdin`; (exit code, stdout, stderr).
fn admin(env: &Env, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["admin", "--config", common::path_str(&env.config)])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), s(&out.stdout), s(&out.stderr))
}

async fn api(env: &Env, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, format!("http://{}{path}", env.admin))
        .bearer_auth(env.token())
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

/// The messages delivered to `address`, as a mail client reads them, oldest first.
fn mails_to(smtp: &SmtpServer, address: &str) -> Vec<Value> {
    smtp.files()
        .iter()
        .map(|f| SmtpServer::read(f))
        .filter(|m| m["to"].as_str().unwrap_or("").contains(address))
        .collect()
}

fn wait_mails(smtp: &SmtpServer, address: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mails = mails_to(smtp, address);
        if mails.len() >= n || std::time::Instant::now() > deadline {
            assert!(mails.len() >= n, "{} of {n} mails to {address}: {mails:?}", mails.len());
            return mails;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The set-up link in a mail's body.
fn link_in(mail: &Value) -> String {
    let body = mail["body"].as_str().unwrap();
    let start = body.find("https://").unwrap_or_else(|| panic!("no link: {body}"));
    body[start..].split_whitespace().next().unwrap().to_string()
}

/// The link's path and query on the test listener (the client resolves the host).
fn path_of(link: &str) -> String {
    let after = link.split_once("://").unwrap().1;
    format!("/{}", after.split_once('/').unwrap().1)
}

async fn get(c: &Client, env: &Env, path: &str) -> (StatusCode, String) {
    let r = c.get(env.url("wiki.localhost", path)).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

/// Posts the invitation form with `pin` and the password (from 127.0.0.3, outside).
async fn post_pin(c: &Client, env: &Env, link: &str, pin: &str) -> (StatusCode, String) {
    // The token from the sign-in page (same flow cookie): a voided link's page has no form.
    let (_, page) = get(c, env, "/.portcullis/login").await;
    let query: std::collections::HashMap<String, String> =
        url_query(link).into_iter().collect::<std::collections::HashMap<_, _>>();
    let fields = [
        ("csrf", csrf_of(&page)),
        ("u", query["u"].clone()),
        ("code", query["code"].clone()),
        ("password", PASSWORD.to_string()),
        ("pin", pin.to_string()),
    ];
    let r = c.post(env.url("wiki.localhost", "/.portcullis/invite?lang=en")).form(&fields).send().await.unwrap();
    let status = r.status();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
    (status, location)
}

fn url_query(link: &str) -> Vec<(String, String)> {
    let q = link.split_once('?').unwrap().1;
    q.split('&').map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invited_user_enrolls_from_outside_with_the_pin_in_a_browser() {
    require_tool("oathtool", "oathtool");
    let _turn = turn().await;
    let s = shared();
    let env = &s.env;
    let (code_, out, err) = admin(env, &["invite", "alice", "--pin-stdin"], Some("482913\n"));
    assert_eq!(code_, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["state"].as_str(), v["mail_sent"].as_bool()), (Some("pending"), Some(true)), "{v}");

    // The mail, as a mail client shows it: Japanese (alice's `lang`), her ID, the link, no PIN.
    let mail = wait_mails(&s.smtp, "alice@example.com", 1).pop().unwrap();
    assert_eq!(mail["subject"], "2 段階認証（スマートフォンの認証アプリ）の設定のご案内", "{mail}");
    assert!(mail["from"].as_str().unwrap().contains("情報システム部"), "{mail}");
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains("ユーザー ID: alice") && body.contains("IT desk, ext. 1234"), "{body}");
    assert!(!body.contains("482913"), "the PIN is never in the mail: {body}");
    let link = link_in(&mail);
    assert!(link.starts_with(&format!("https://wiki.localhost:{}/.portcullis/invite?u=alice&code=", env.https.port())));

    // Outside, without the invitation, alice could not enroll.
    let outside = browser(env, "127.0.0.3");
    let (_, v) =
        common::api::post(&outside, env, "/.portcullis/api/login", json!({"username": "alice", "password": PASSWORD}))
            .await;
    assert_eq!(v["next"], "ask_admin", "{v}");

    // In Chromium (127.0.0.1: outside): a wrong PIN first, then the right one.
    let b = Browser::start("ja", "MAP wiki.localhost 127.0.0.1").await;
    let t = |key| text(Lang::Ja, key);
    b.goto(&link).await;
    assert_eq!(b.find("h1").await.text().await, t(Text::InviteTitle));
    b.find("input#password").await.send_keys(PASSWORD).await;
    b.find("input#pin").await.send_keys("000000").await;
    submit(&b).await;
    let error = b.find("#form-error").await.text().await;
    assert_eq!(error, t(Text::ErrWrongPin).replace("{left}", "2"));
    b.find("input#password").await.send_keys(PASSWORD).await;
    b.find("input#pin").await.send_keys("482913").await;
    submit(&b).await;
    // The normal enrollment follows: the key string, then a code from oathtool.
    let key = b.find("code.key").await.text().await.replace(' ', "");
    assert!(b.current_url().await.contains("/.portcullis/enroll"), "{}", b.current_url().await);
    b.mark_page().await;
    b.find("main a.button").await.click().await;
    b.wait_for_new_page().await;
    b.find("input#code").await.send_keys(&code(&key, 0)).await;
    submit(&b).await;
    assert!(b.find("ol.codes li code").await.text().await.len() >= 8, "recovery codes shown");

    // The link is spent.
    b.goto(&link).await;
    b.find("h1").await;
    let page = b.page_source().await;
    assert!(page.contains(t(Text::InviteUsed)), "{page}");

    // A notice when an administrator revokes the new authenticator, in Japanese.
    let (code_, out, err) = admin(env, &["revoke-totp", "alice"], None);
    assert_eq!(code_, 0, "{out}{err}");
    let mails = wait_mails(&s.smtp, "alice@example.com", 2);
    assert_eq!(mails[1]["subject"], "認証アプリが失効しました", "{:?}", mails[1]);
    assert!(mails[1]["body"].as_str().unwrap().contains("以降に新しく登録できます"), "{:?}", mails[1]);
}

async fn submit(b: &Browser) {
    b.mark_page().await;
    b.find("main form button[type=submit]").await.click().await;
    b.wait_for_new_page().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_wrong_pins_void_the_link_and_an_expired_link_says_so() {
    let _turn = turn().await;
    let s = shared();
    let env = &s.env;
    let (status, v) = api(env, reqwest::Method::POST, "/invite", json!({"user": "bob", "pin": "1357"})).await;
    assert_eq!(status, 200, "{v}");
    let link = link_in(&wait_mails(&s.smtp, "bob@example.com", 1)[0]);
    let c = browser(env, "127.0.0.3");
    for left in ["2", "1"] {
        let (st, to) = post_pin(&c, env, &link, "2468").await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        assert!(to.contains("error=pin"), "{to}");
        let (_, page) = get(&c, env, &to).await;
        assert!(page.contains(&format!("{left} more tries")), "{page}");
    }
    post_pin(&c, env, &link, "2468").await;
    let (st, page) = get(&c, env, &path_of(&link)).await;
    assert_eq!(st, StatusCode::GONE, "{page}");
    assert!(page.contains(text(Lang::En, Text::InviteVoided)), "{page}");
    // Voided stays voided, even with the right PIN.
    let (_, v) = api(env, reqwest::Method::GET, "/invitations", json!({})).await;
    let bob = v["invitations"].as_array().unwrap().iter().find(|i| i["user"] == "bob").unwrap().clone();
    assert_eq!((bob["state"].as_str(), bob["pin_tries"].as_u64()), (Some("voided"), Some(3)), "{bob}");
    let (_, to) = post_pin(&c, env, &link, "1357").await;
    let (st, _) = get(&c, env, &to).await;
    assert_eq!(st, StatusCode::GONE);

    // A link past its time: `invitation_ttl` of one second here.
    reconfigure(s, s.smtp.port(), "1s");
    let (status, v) = api(env, reqwest::Method::POST, "/invite", json!({"user": "erin", "pin": "9753"})).await;
    reconfigure(s, s.smtp.port(), "72h");
    assert_eq!(status, 200, "{v}");
    let link = link_in(&wait_mails(&s.smtp, "erin@example.com", 1)[0]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (st, page) = get(&c, env, &path_of(&link)).await;
    assert_eq!(st, StatusCode::GONE, "{page}");
    assert!(page.contains(text(Lang::En, Text::InviteExpired)), "{page}");
    // A made-up code says the link is not valid.
    let (st, page) = get(&c, env, "/.portcullis/invite?u=erin&code=0000").await;
    assert_eq!(st, StatusCode::GONE);
    assert!(page.contains(text(Lang::En, Text::InviteUnknown)), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mail_that_fails_leaves_the_invitation_pending_and_resend_delivers_it() {
    let _turn = turn().await;
    let s = shared();
    let env = &s.env;
    // The server refuses the recipient: 202, the reason, and the invitation pending.
    let (status, v) = api(
        env,
        reqwest::Method::POST,
        "/invite",
        json!({"user": "carol", "pin": "2580", "email": "nobody@example.com"}),
    )
    .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!((v["mail_sent"].as_bool(), v["state"].as_str()), (Some(false), Some("pending")), "{v}");
    assert!(v["mail_error"].as_str().unwrap().contains("550"), "{v}");

    // The server is down: the CLI says so, and the invitation waits.
    reconfigure(s, free_port(), "72h");
    let (code_, out, err) = admin(env, &["invite", "dave", "--pin-stdin"], Some("8642\n"));
    assert_eq!(code_, 1, "{out}");
    assert!(err.contains("mail not sent:") && err.contains("refused"), "{err}");
    reconfigure(s, s.smtp.port(), "72h");
    let (code_, out, _) = admin(env, &["invitations"], None);
    assert_eq!(code_, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    let of = |u: &str| list["invitations"].as_array().unwrap().iter().find(|i| i["user"] == u).unwrap().clone();
    assert!(of("dave")["mail_error"].as_str().unwrap().contains("refused"), "{list}");
    assert!(of("carol")["mail_error"].as_str().unwrap().contains("550"), "{list}");

    // The console shows it to an administrator, with a Resend button.
    let mia = browser(env, "127.0.0.2");
    let (_, v) =
        common::api::post(&mia, env, "/.portcullis/api/login", json!({"username": "mia", "password": PASSWORD})).await;
    assert_eq!(v["next"], "enroll_totp", "{v}");
    let (_, e) = common::api::post(&mia, env, "/.portcullis/api/totp/enroll", json!({})).await;
    let (_, v) = common::api::post(
        &mia,
        env,
        "/.portcullis/api/totp/enroll/confirm",
        json!({"code": code(e["secret"].as_str().unwrap(), 0)}),
    )
    .await;
    assert_eq!(v["next"], "done", "{v}");
    let (st, page) = get(&mia, env, "/.portcullis/admin/invitations?lang=en").await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("mail not sent:") && page.contains("refused"), "{page}");
    assert!(page.contains("/.portcullis/admin/invite/resend"), "{page}");

    // Resend (from the console, as mia): a new link arrives, and works.
    let csrf = csrf_of(&page);
    let r = mia
        .post(env.url("wiki.localhost", "/.portcullis/admin/invite/resend?lang=en"))
        .form(&[("csrf", csrf.as_str()), ("user", "dave")])
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("A new link for dave was sent to dave@example.com"), "{page}");
    let link = link_in(&wait_mails(&s.smtp, "dave@example.com", 1)[0]);
    let c = browser(env, "127.0.0.3");
    let (st, to) = post_pin(&c, env, &link, "8642").await;
    assert_eq!((st, to.as_str()), (StatusCode::SEE_OTHER, "/.portcullis/enroll?lang=en"));
}
