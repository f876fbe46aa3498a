//! The sign-in pages in a real browser: headless Chromium, driven over
//! WebDriver, goes from the app to the login page, enrolls an authenticator
//! (reading the key string off the page, codes from `oathtool`), sees its
//! recovery codes and lands in the app as alice, once in English and once in
//! Japanese. Screenshots of each page go to `target/screenshots/<lang>-<step>.png`.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::{Env, PASSWORD};
use percent_encoding::percent_decode_str;
use portcullis::challenge::pages::{text, Lang, Text};
use serde_json::Value;
use std::path::PathBuf;
use webdriver::{require_tool, Browser};

/// Chromium connects from 127.0.0.1, which is `internal` here: enrollment is
/// allowed, and the second factor is still asked (`otp_skip = "never"`).
fn apps() -> String {
    common::LOGIN_APPS.replace("127.0.0.2/32", "127.0.0.1/32")
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_and_enroll_in_english() {
    sign_in_and_enroll(Lang::En).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_and_enroll_in_japanese() {
    sign_in_and_enroll(Lang::Ja).await;
}

async fn sign_in_and_enroll(lang: Lang) {
    require_tool("oathtool", "oathtool");
    let env = Env::new("", &apps());
    let _proxy = env.start();
    let b = Browser::start(lang.code(), "MAP wiki.localhost 127.0.0.1").await;
    let shot = |step: &str| screenshot_path(lang, step);

    // The app sends a browser without a session to the login page.
    b.goto(&env.url("wiki.localhost", "/app")).await;
    b.find("input#username").await.send_keys("alice").await;
    let url = b.current_url().await;
    let login = env.url("wiki.localhost", "/.portcullis/login?rd=");
    let rd = url.strip_prefix(&login).map(|rd| percent_decode_str(rd).decode_utf8_lossy());
    assert_eq!(rd.as_deref(), Some("/app"), "{url}");
    expect_page(&b, lang, Text::LoginTitle).await;
    assert_eq!(button(&b).await, text(lang, Text::SignInButton));
    b.find("input#password").await.send_keys(PASSWORD).await;
    b.screenshot(&shot("1-login")).await;
    b.find("button[type=submit]").await.click().await;

    // Enrollment, step 1: a QR code and the key string for desktop apps.
    let key = b.find("code.key").await.text().await;
    expect_page(&b, lang, Text::EnrollTitle).await;
    assert!(!b.find_all("figure.qr svg").await.is_empty(), "no QR code");
    let key: String = key.split_whitespace().collect();
    assert!(key.len() >= 16 && key.chars().all(|c| c.is_ascii_alphanumeric()), "key {key:?}");
    b.screenshot(&shot("2-enroll")).await;
    let next = b.find("a.button").await;
    assert_eq!(next.text().await, text(lang, Text::NextButton));
    next.click().await;

    // Step 2: a wrong code is refused in the page's language, then the code
    // the authenticator app shows now.
    b.find("input#code").await.send_keys("000000").await;
    expect_page(&b, lang, Text::EnrollTitle).await;
    b.find("button[type=submit]").await.click().await;
    let error = b.find("#form-error").await.text().await;
    assert_eq!(error, text(lang, Text::ErrWrongCode));
    let code = b.find("input#code").await;
    assert_eq!(code.attribute("aria-invalid").await.as_deref(), Some("true"));
    b.screenshot(&shot("3-wrong-code")).await;
    code.send_keys(&common::api::code(&key, 0)).await;
    b.screenshot(&shot("4-confirm")).await;
    b.find("button[type=submit]").await.click().await;

    // Step 3: ten recovery codes, shown once.
    b.find("ol.codes").await;
    expect_page(&b, lang, Text::RecoveryCodesTitle).await;
    let codes = b.find_all("ol.codes li code").await;
    assert_eq!(codes.len(), 10);
    for c in &codes {
        assert!(!c.text().await.trim().is_empty(), "an empty recovery code");
    }
    b.screenshot(&shot("5-recovery-codes")).await;
    let cont = b.find("a.button").await;
    assert_eq!(cont.text().await, text(lang, Text::ContinueLink));
    cont.click().await;

    // The app, which receives alice.
    let echo = b.find("body pre").await.text().await;
    let url = b.current_url().await;
    assert_eq!(url, env.url("wiki.localhost", "/app"));
    b.screenshot(&shot("6-app")).await;
    let echo: Value = serde_json::from_str(&echo).unwrap_or_else(|e| panic!("{e}: {echo}"));
    assert_eq!(header(&echo, "x-portcullis-user"), Some("alice"), "{echo:#}");
}

/// Checks the page is a portal page in `lang` with the title `title`.
async fn expect_page(b: &Browser, lang: Lang, title: Text) {
    let html_lang = b.find("html").await.attribute("lang").await;
    assert_eq!(html_lang.as_deref(), Some(lang.code()));
    assert_eq!(b.find("h1").await.text().await, text(lang, title));
}

async fn button(b: &Browser) -> String {
    b.find("button[type=submit]").await.text().await
}

fn header<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    echo["headers"].as_array()?.iter().find_map(|h| {
        let n = h[0].as_str()?;
        n.eq_ignore_ascii_case(name).then(|| h[1].as_str()).flatten()
    })
}

fn screenshot_path(lang: Lang, step: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots").join(format!("{}-{step}.png", lang.code()))
}
