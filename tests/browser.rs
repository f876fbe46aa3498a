//! The sign-in pages as a user finds them, in a real browser: headless
//! Chromium, driven over WebDriver, in English and Japanese, on a desktop
//! window (1280×900) and a phone's (390×844). One browser and one server for
//! the whole run: each of the four rounds signs a user of its own in from the
//! app, enrolls an authenticator (the key string read off the page, codes
//! from `oathtool`), keeps the recovery codes, visits the dashboard, makes new
//! codes, signs out, and locks another user out. Each round's browser asks
//! for the *other* language (`Accept-Language`) and picks its own with the
//! page's switch, so every page checked in the chosen language shows the
//! choice survived every redirect before it.
//!
//! Along the way it checks what a user would trip over: every page names the
//! app and, after the password, the user; each POST lands on a GET page that
//! a reload shows again without sending anything; recovery codes never wrap
//! and can be copied and downloaded; Next is on screen on a phone; the confirm
//! step leads back to the QR code; the locked page has a way back; the
//! dashboard leads back to the app and keeps each hint by its button;
//! Japanese breaks between phrases. Screenshots of each page go to
//! `target/screenshots/<lang>-<size>-<n>-<page>.png` (e.g. `ja-phone-2-enroll.png`).

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::{Env, HASH, PASSWORD};
use portcullis::challenge::pages::{text, Lang, Text};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use webdriver::{require_tool, Browser};

/// Chromium connects from 127.0.0.1, which is `internal` here: enrollment is
/// allowed, and the second factor is still asked (`otp_skip = "never"`).
fn apps() -> String {
    let apps = common::LOGIN_APPS.replace("127.0.0.2/32", "127.0.0.1/32");
    let apps = apps.replace("name = \"wiki\"\n", "name = \"wiki\"\ndisplay_name = \"Team Wiki\"\n");
    format!("[lockout]\nmax_failures = 3\nper_address_max = 1000\n\n[portal]\ncontact = \"IT desk, ext. 1234\"\n{apps}")
}

const APP: &str = "Team Wiki";
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// One round: a language, a window, and the users it signs in and locks out.
struct Round {
    lang: Lang,
    size: &'static str,
    window: (u32, u32),
    user: &'static str,
    locked_user: &'static str,
}

const ROUNDS: [Round; 4] = [
    Round { lang: Lang::En, size: "desktop", window: DESKTOP, user: "alice", locked_user: "mallory1" },
    Round { lang: Lang::En, size: "phone", window: PHONE, user: "bob", locked_user: "mallory2" },
    Round { lang: Lang::Ja, size: "desktop", window: DESKTOP, user: "carol", locked_user: "mallory3" },
    Round { lang: Lang::Ja, size: "phone", window: PHONE, user: "dave", locked_user: "mallory4" },
];

#[tokio::test(flavor = "multi_thread")]
async fn the_portal_as_a_user_finds_it() {
    require_tool("oathtool", "oathtool");
    let env = Env::new("", &apps());
    let mut users = String::new();
    for r in &ROUNDS {
        for name in [r.user, r.locked_user] {
            users.push_str(&format!(
                "[[user]]\nusername = \"{name}\"\npassword = \"{HASH}\"\npolicy_group = \"staff\"\n"
            ));
        }
    }
    std::fs::write(env.dir.path().join("users.toml"), users).unwrap();
    let _proxy = env.start();
    let b = Browser::start("en", "MAP wiki.localhost 127.0.0.1").await;
    let downloads = tempfile::tempdir().unwrap();
    let path = downloads.path().to_str().unwrap();
    b.cdp("Browser.setDownloadBehavior", json!({"behavior": "allow", "downloadPath": path})).await;
    let user_agent = b.execute("return navigator.userAgent;", json!([])).await;
    for round in &ROUNDS {
        let other = if round.lang == Lang::En { "ja" } else { "en" };
        let ua = json!({"userAgent": user_agent, "acceptLanguage": other});
        b.cdp("Network.setUserAgentOverride", ua).await;
        b.cdp("Network.clearBrowserCookies", json!({})).await;
        // The viewport itself at the round's size (a window's includes the browser's bars).
        let (width, height) = round.window;
        let metrics =
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": round.window == PHONE});
        b.cdp("Emulation.setDeviceMetricsOverride", metrics).await;
        let p = Pages { b: &b, env: &env, round, downloads: downloads.path() };
        p.sign_in_and_enroll().await;
        p.dashboard_and_sign_out().await;
        p.locked_out().await;
    }
}

struct Pages<'a> {
    b: &'a Browser,
    env: &'a Env,
    round: &'a Round,
    downloads: &'a Path,
}

impl Pages<'_> {
    fn t(&self, t: Text) -> &'static str {
        text(self.round.lang, t)
    }

    async fn sign_in_and_enroll(&self) {
        let (b, lang) = (self.b, self.round.lang);
        // The app sends a browser without a session to the login page, in
        // the browser's language; the switch picks the round's.
        b.goto(&self.env.url("wiki.localhost", "/app")).await;
        b.find("input#username").await;
        assert_eq!(self.html_lang().await, if lang == Lang::En { "ja" } else { "en" });
        self.go(&b.find(&format!("nav a[hreflang={}]", lang.code())).await).await;
        self.expect(Text::LoginTitle, None).await;
        let url = b.current_url().await;
        assert!(url.contains("rd=%2Fapp") || url.contains("rd=/app"), "the switch keeps the return target: {url}");

        // A wrong password: back on the form (a GET), which says so.
        b.find("input#username").await.send_keys(self.round.user).await;
        b.find("input#password").await.send_keys("not-the-password").await;
        self.shot("1-login").await;
        self.submit().await;
        self.expect_after_post("/.portcullis/login", Text::LoginTitle, None).await;
        assert_eq!(b.find("#form-error").await.text().await, self.t(Text::ErrBadCredentials));
        self.reload_changes_nothing().await;
        assert_eq!(b.find("#form-error").await.text().await, self.t(Text::ErrBadCredentials));

        b.find("input#username").await.send_keys(self.round.user).await;
        b.find("input#password").await.send_keys(PASSWORD).await;
        self.submit().await;

        // Enrollment, step 1: a QR code, a link for this phone, the key string.
        let key = b.find("code.key").await.text().await;
        self.expect_after_post("/.portcullis/enroll", Text::EnrollTitle, Some(self.round.user)).await;
        assert!(!b.find_all("figure.qr svg").await.is_empty(), "no QR code");
        let otpauth = b.find("a#otpauth-link").await.attribute("href").await.unwrap_or_default();
        assert!(otpauth.starts_with("otpauth://totp/"), "{otpauth}");
        let key: String = key.split_whitespace().collect();
        assert!(key.len() >= 16 && key.chars().all(|c| c.is_ascii_alphanumeric()), "key {key:?}");
        self.shot("2-enroll").await;
        let next = b.find("a.button").await;
        assert_eq!(next.text().await, self.t(Text::NextButton));
        self.on_screen("main a.button").await;
        self.go(&next).await;

        // Step 2: a way back to the QR code; a wrong code is refused.
        b.find("input#code").await;
        self.expect(Text::EnrollTitle, Some(self.round.user)).await;
        let back = b.find("a#back-to-qr").await.attribute("href").await.unwrap_or_default();
        assert!(back.starts_with("/.portcullis/enroll?") && back.contains(&format!("lang={}", lang.code())), "{back}");
        b.find("input#code").await.send_keys("000000").await;
        self.submit().await;
        self.expect_after_post("/.portcullis/enroll/confirm", Text::EnrollTitle, Some(self.round.user)).await;
        assert_eq!(b.find("#form-error").await.text().await, self.t(Text::ErrWrongCode));
        let code = b.find("input#code").await;
        assert_eq!(code.attribute("aria-invalid").await.as_deref(), Some("true"));
        self.shot("3-wrong-code").await;
        self.reload_changes_nothing().await;
        b.find("input#code").await.send_keys(&common::api::code(&key, 0)).await;
        self.submit().await;

        // Step 3: ten recovery codes, each on one line, to copy or download.
        self.recovery_codes().await;
        self.shot("4-recovery-codes").await;
        let cont = b.find("main a.button:not(#download-codes)").await;
        assert_eq!(cont.text().await, self.t(Text::ContinueLink));
        self.go(&cont).await;

        // The app, which receives the user.
        let echo = b.find("body pre").await.text().await;
        assert_eq!(b.current_url().await, self.env.url("wiki.localhost", "/app"));
        let echo: Value = serde_json::from_str(&echo).unwrap_or_else(|e| panic!("{e}: {echo}"));
        assert_eq!(header(&echo, "x-portcullis-user"), Some(self.round.user), "{echo:#}");
    }

    /// The recovery codes page after its redirect: checks it, copies and
    /// downloads the codes, and returns them.
    async fn recovery_codes(&self) -> Vec<String> {
        let b = self.b;
        b.find("ol.codes").await;
        self.expect_after_post("/.portcullis/recovery-codes", Text::RecoveryCodesTitle, Some(self.round.user)).await;
        let mut codes = Vec::new();
        for c in b.find_all("ol.codes li code").await {
            codes.push(c.text().await.trim().to_string());
        }
        assert_eq!(codes.len(), 10);
        assert!(codes.iter().all(|c| c.len() >= 8), "{codes:?}");
        // No code wraps: one line box each, and `nowrap`; one column on a phone.
        let layout = b
            .execute(
                "const codes = [...document.querySelectorAll('ol.codes li code')];
                 const list = document.querySelector('ol.codes');
                 return { lines: codes.map(c => c.getClientRects().length),
                          space: codes.map(c => getComputedStyle(c).whiteSpace),
                          columns: getComputedStyle(list).columnCount };",
                json!([]),
            )
            .await;
        assert!(layout["lines"].as_array().unwrap().iter().all(|n| n == 1), "{layout}");
        assert!(layout["space"].as_array().unwrap().iter().all(|s| s == "nowrap"), "{layout}");
        let columns = if self.round.window == PHONE { "1" } else { "2" };
        assert_eq!(layout["columns"], columns, "{layout}");
        // Copy: the button shows (its script runs under the page's CSP) and says what it did.
        let copy = b.find("button#copy-codes").await;
        assert_eq!(copy.text().await, self.t(Text::CopyCodesButton));
        copy.click().await;
        let status = self.wait_for_text("#copy-status").await;
        assert!([self.t(Text::CodesCopied), self.t(Text::CodesSelected)].contains(&status.as_str()), "{status}");
        // Download: a text file with every code.
        let download = b.find("a#download-codes").await;
        assert_eq!(download.text().await, self.t(Text::DownloadCodesLink));
        let file = self.downloads.join(format!("recovery-codes-{}.txt", self.round.user));
        let _ = std::fs::remove_file(&file);
        download.click().await;
        let saved = wait_for_file(&file).await;
        assert!(codes.iter().all(|c| saved.contains(c.as_str())), "{saved}");
        self.reload_changes_nothing().await;
        codes
    }

    async fn dashboard_and_sign_out(&self) {
        let (b, lang) = (self.b, self.round.lang);
        b.goto(&self.env.url("wiki.localhost", &format!("/.portcullis/?lang={}", lang.code()))).await;
        self.expect(Text::DashboardTitle, Some(self.round.user)).await;
        let back = b.find("a#back-to-app").await;
        assert_eq!(back.attribute("href").await.as_deref(), Some("/"));
        assert!(back.text().await.contains(APP));
        // Each hint right under the button it explains.
        for (button, hint) in [("regenerate-note", "regenerate-note"), ("everywhere-note", "everywhere-note")] {
            let gap = b
                .execute(
                    "const button = document.querySelector(`button[aria-describedby='${arguments[0]}']`);
                     const hint = document.getElementById(arguments[1]);
                     return hint.getBoundingClientRect().top - button.getBoundingClientRect().bottom;",
                    json!([button, hint]),
                )
                .await;
            let gap = gap.as_f64().unwrap();
            assert!((0.0..24.0).contains(&gap), "{hint} is {gap}px below its button");
        }
        self.shot("5-dashboard").await;

        // New recovery codes: a POST, then their page, then back to the dashboard.
        self.go(&b.find("button[aria-describedby='regenerate-note']").await).await;
        self.recovery_codes().await;
        self.go(&b.find("main a.button:not(#download-codes)").await).await;
        self.expect_after_post("/.portcullis/", Text::DashboardTitle, Some(self.round.user)).await;

        // Sign out: a POST, then the signed-out page (a GET).
        self.go(&b.find("form[action^='/.portcullis/logout']:not(.action) button").await).await;
        self.expect_after_post("/.portcullis/notice", Text::SignedOutTitle, None).await;
        self.reload_changes_nothing().await;
        self.shot("6-signed-out").await;
    }

    /// Three wrong passwords lock a user; the page offers a way back.
    async fn locked_out(&self) {
        let (b, lang) = (self.b, self.round.lang);
        b.goto(&self.env.url("wiki.localhost", &format!("/.portcullis/login?lang={}", lang.code()))).await;
        for _ in 0..3 {
            b.find("input#username").await.send_keys(self.round.locked_user).await;
            b.find("input#password").await.send_keys("wrong").await;
            self.submit().await;
        }
        self.expect_after_post("/.portcullis/notice", Text::LockedTitle, None).await;
        assert!(b.find("p.contact").await.text().await.contains("IT desk"));
        let again = b.find("main p a").await;
        assert_eq!(again.text().await, self.t(Text::SignInAgainLink));
        let href = again.attribute("href").await.unwrap_or_default();
        assert!(href.starts_with("/.portcullis/login?lang=") && href.contains(lang.code()), "{href}");
        self.reload_changes_nothing().await;
        self.shot("7-locked").await;
    }

    /// The page is a portal page in the round's language titled `title`,
    /// naming the app and, when given, the user.
    async fn expect(&self, title: Text, user: Option<&str>) {
        let b = self.b;
        assert_eq!(self.html_lang().await, self.round.lang.code(), "on {}", b.current_url().await);
        assert_eq!(b.find("h1").await.text().await, self.t(title));
        assert_eq!(b.find("#app-name").await.text().await, APP);
        let named = b.find_all("#user-name").await;
        match user {
            Some(u) => assert_eq!(named.first().expect("no user named").text().await, u),
            None => assert!(named.is_empty(), "a user is named"),
        }
        // Japanese breaks between phrases, not inside words.
        let word_break =
            b.execute("return getComputedStyle(document.querySelector('main p')).wordBreak;", json!([])).await;
        let expected = if self.round.lang == Lang::Ja { "auto-phrase" } else { "normal" };
        assert_eq!(word_break, expected);
    }

    /// [`Pages::expect`] on the GET page a POST redirected to: `path`, with the language.
    async fn expect_after_post(&self, path: &str, title: Text, user: Option<&str>) {
        let url = self.b.current_url().await;
        let here = url.split_once("localhost:").map(|(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
        let here = format!("/{}", here.unwrap_or_default());
        let (page, query) = here.split_once('?').unwrap_or((&here, ""));
        assert_eq!(page, path, "{url}");
        assert!(query.split('&').any(|kv| kv == format!("lang={}", self.round.lang.code())), "{url}");
        self.expect(title, user).await;
    }

    /// A reload shows the same page again (it was a GET: nothing is sent again).
    async fn reload_changes_nothing(&self) {
        let b = self.b;
        let (url, page) = (b.current_url().await, b.find("main").await.text().await);
        b.reload().await;
        assert_eq!(b.current_url().await, url);
        let again = b.find("main").await.text().await;
        // The copy status is the script's; everything else is the server's.
        let strip = |s: &str| {
            let s = s.replace(self.t(Text::CodesCopied), "").replace(self.t(Text::CodesSelected), "");
            s.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        assert_eq!(strip(&again), strip(&page), "a reload changed {url}");
    }

    async fn on_screen(&self, css: &str) {
        let v = self
            .b
            .execute(
                "const r = document.querySelector(arguments[0]).getBoundingClientRect();
                 return { bottom: r.bottom, height: window.innerHeight };",
                json!([css]),
            )
            .await;
        assert!(v["bottom"].as_f64().unwrap() <= v["height"].as_f64().unwrap(), "{css} is below the fold: {v}");
    }

    async fn submit(&self) {
        self.go(&self.b.find("main form button[type=submit]").await).await;
    }

    /// Clicks `el` and waits for the page it leads to (after any redirects).
    async fn go(&self, el: &webdriver::Element<'_>) {
        self.b.mark_page().await;
        el.click().await;
        self.b.wait_for_new_page().await;
    }

    async fn html_lang(&self) -> String {
        self.b.find("html").await.attribute("lang").await.unwrap_or_default()
    }

    async fn wait_for_text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let t = self.b.find(css).await.text().await;
            if !t.is_empty() || Instant::now() > deadline {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn shot(&self, step: &str) {
        let name = format!("{}-{}-{step}.png", self.round.lang.code(), self.round.size);
        self.b.screenshot(&screenshot_dir().join(name)).await;
    }
}

async fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.is_empty() {
                return s;
            }
        }
        assert!(Instant::now() < deadline, "no download at {}", path.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn header<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    echo["headers"].as_array()?.iter().find_map(|h| {
        let n = h[0].as_str()?;
        n.eq_ignore_ascii_case(name).then(|| h[1].as_str()).flatten()
    })
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}
