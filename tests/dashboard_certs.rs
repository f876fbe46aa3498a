//! The user's own device certificates on the dashboard and in `whoami`,
//! through a real portcullis: certificates issued and set expiring with the
//! admin CLI, read by signed-in users in English and Japanese. The dates are
//! checked against the `date` tool, in the `[totp] timezone` (+09:00).

mod common;

use common::{api, portcullis, Env, HASH, PASSWORD};
use serde_json::{json, Value};
use std::path::Path;

/// A login that needs no second factor, so a test signs in with one request.
const APPS: &str = r#"
[policy_group.staff]
allow = "always"
otp_skip = "always"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]
"#;

/// `[totp] timezone` for the dates shown to users, and `[device_certificates]`.
fn extra(validity: &str) -> String {
    format!("\n[totp]\ntimezone = \"+09:00\"\n\n[device_certificates]\ncontracted = 10\nvalidity = \"{validity}\"\n")
}

fn cert_cmd(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["admin", "--config", common::path_str(&env.config), "cert"];
    all.extend_from_slice(args);
    let (code, out, err) = portcullis(&all);
    assert_eq!(code, 0, "cert {args:?}: {out}{err}");
    out
}

/// Issues a certificate for `user`'s `device`; returns its serial.
fn issue(env: &Env, dir: &Path, user: &str, device: &str) -> String {
    let p12 = dir.join(format!("{device}.p12"));
    let out = cert_cmd(env, &["issue", "--user", user, "--device", device, "--out", common::path_str(&p12)]);
    let serial = out.split("serial ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_default();
    assert_eq!(serial.len(), 32, "{out}");
    serial.to_string()
}

/// The registry record of `serial` as the admin API lists it.
async fn record(env: &Env, serial: &str) -> Value {
    let (status, body) = env.admin(reqwest::Method::POST, "/cert/list", Some(&env.token())).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["certificates"].as_array().unwrap().iter().find(|c| c["serial"] == serial).cloned().unwrap()
}

/// Unix time `at` in +09:00 to the minute, as GNU `date` writes it.
fn local(at: u64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{}", at + 9 * 3600), "+%Y-%m-%d %H:%M"])
        .output()
        .unwrap();
    format!("{} (+09:00)", String::from_utf8(out.stdout).unwrap().trim())
}

/// A browser signed in as `user` (no second factor in this config).
async fn signed_in(env: &Env, user: &str) -> reqwest::Client {
    let c = api::browser(env, "127.0.0.1");
    let (status, body) =
        api::post(&c, env, "/.portcullis/api/login", json!({"username": user, "password": PASSWORD})).await;
    assert_eq!((status.as_u16(), body["next"].as_str()), (200, Some("done")), "{body}");
    c
}

async fn dashboard(c: &reqwest::Client, env: &Env, lang: &str) -> String {
    let r = c.get(env.url("wiki.localhost", &format!("/.portcullis/?lang={lang}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The `<li>` of the dashboard's certificate list naming `serial`.
fn row<'a>(page: &'a str, serial: &str) -> &'a str {
    let start =
        page.find(&format!("<li data-serial=\"{serial}\"")).unwrap_or_else(|| panic!("{serial} not listed:\n{page}"));
    &page[start..start + page[start..].find("</li>").unwrap()]
}

#[tokio::test]
async fn the_dashboard_and_whoami_list_the_users_own_certificates_and_warn_of_one_that_stops_soon() {
    let env = Env::new(&extra("397d"), APPS);
    let users = env.dir.path().join("users.toml");
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str(&format!("\n[[user]]\nusername = \"bob\"\npassword = \"{HASH}\"\npolicy_group = \"staff\"\n"));
    std::fs::write(&users, text).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Valid for 397 days: alice's laptop is being replaced (90 days left), her phone is fresh,
    // her old PC is revoked, her old phone expired; bob has a desktop.
    let p = env.start();
    let laptop = issue(&env, dir.path(), "alice", "laptop");
    let phone = issue(&env, dir.path(), "alice", "phone");
    let old_pc = issue(&env, dir.path(), "alice", "old-pc");
    let old_phone = issue(&env, dir.path(), "alice", "old-phone");
    let desktop = issue(&env, dir.path(), "bob", "desktop");
    cert_cmd(&env, &["set-expiring", &laptop]);
    cert_cmd(&env, &["revoke", &old_pc]);
    cert_cmd(&env, &["expire", &old_phone]);
    let expired_at = local(record(&env, &old_phone).await["expires_at"].as_u64().unwrap());
    let set_at = record(&env, &laptop).await["set_expiring_at"].as_u64().unwrap();
    drop(p);

    // Certificates issued from now on are valid for 10 days: the tablet's own end is within 14.
    env.rewrite(&extra("10d"), APPS);
    let _p = env.start();
    let tablet = issue(&env, dir.path(), "alice", "tablet");
    let tablet_end = record(&env, &tablet).await["not_after"].as_u64().unwrap();
    let (laptop_end, tablet_end) = (local(set_at + 90 * 86_400), local(tablet_end));

    let alice = signed_in(&env, "alice").await;
    let page = dashboard(&alice, &env, "en").await;
    assert!(page.contains("<h2>Device certificates</h2>"), "{page}");
    assert!(row(&page, &laptop).contains(&format!("Being replaced: stops working on {laptop_end}")), "{page}");
    assert!(row(&page, &phone).contains("<strong>phone</strong>: Active: works until"), "{page}");
    assert!(row(&page, &old_pc).contains("Revoked: no longer works"), "{page}");
    assert!(row(&page, &old_phone).contains(&format!("Expired: stopped working on {expired_at}")), "{page}");
    assert!(row(&page, &tablet).contains(&format!("Active: works until {tablet_end}")), "{page}");
    assert!(!page.contains(&desktop) && !page.contains("desktop"), "not another user's: {page}");
    // One banner: the tablet stops within 14 days; the laptop's 90 days and the fresh phone do not warn.
    let banner = format!(
        "The certificate of your device tablet stops working on {tablet_end}: get your new device&#39;s certificate before then."
    );
    assert_eq!(page.matches("class=\"warning\"").count(), 1, "{page}");
    assert!(page.contains(&banner), "{page}");

    let ja = dashboard(&alice, &env, "ja").await;
    assert!(ja.contains(&format!("端末「tablet」の証明書は{tablet_end}に使用できなくなります。")), "{ja}");
    assert!(row(&ja, &laptop).contains(&format!("置き換え中: {laptop_end}に使用できなくなります")), "{ja}");
    assert!(ja.contains("<h2>デバイス証明書</h2>"), "{ja}");

    let who: Value =
        alice.get(env.url("wiki.localhost", "/.portcullis/api/whoami")).send().await.unwrap().json().await.unwrap();
    let certs = who["device_certificates"].as_array().unwrap();
    // Oldest first, but these were all issued within a second or two: compare as a set.
    let mut listed: Vec<(&str, &str, bool)> = certs
        .iter()
        .map(|c| (c["serial"].as_str().unwrap(), c["status"].as_str().unwrap(), c["stops_soon"].as_bool().unwrap()))
        .collect();
    listed.sort_unstable();
    let mut expected = vec![
        (laptop.as_str(), "expiring", false),
        (phone.as_str(), "active", false),
        (old_pc.as_str(), "revoked", false),
        (old_phone.as_str(), "expired", false),
        (tablet.as_str(), "active", true),
    ];
    expected.sort_unstable();
    assert_eq!(listed, expected, "{who}");
    let of = |serial: &str| certs.iter().find(|c| c["serial"] == serial).unwrap();
    assert_eq!(of(&laptop)["stops_working_at"].as_u64(), Some(set_at + 90 * 86_400), "{who}");
    assert_eq!(of(&laptop)["stops_working_at_local"].as_str(), Some(laptop_end.as_str()), "{who}");
    assert!(of(&laptop)["stops_working_at_utc"].as_str().unwrap().ends_with('Z'), "{who}");
    assert!(of(&old_pc)["stops_working_at"].is_null(), "a revoked certificate has no end to show: {who}");

    let bob = signed_in(&env, "bob").await;
    let page = dashboard(&bob, &env, "en").await;
    assert!(row(&page, &desktop).contains("<strong>desktop</strong>: Active"), "{page}");
    for other in [&laptop, &phone, &old_pc, &old_phone, &tablet] {
        assert!(!page.contains(other.as_str()), "bob sees alice's {other}: {page}");
    }
    assert!(!page.contains("class=\"warning\""), "{page}");
    let who: Value =
        bob.get(env.url("wiki.localhost", "/.portcullis/api/whoami")).send().await.unwrap().json().await.unwrap();
    assert_eq!(who["device_certificates"].as_array().map(Vec::len), Some(1), "{who}");
}
