//! A small WebDriver client for headless Chromium: starts `chromedriver` on a
//! free port, opens one session with a fresh profile, and offers the handful of
//! commands a page-flow test needs. The session is deleted and `chromedriver`
//! killed on drop, so a failing test leaves no browser behind.
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver`
//! (`scripts/deps.sh test` installs them); a test fails, never skips, without them.

#![allow(dead_code)]

use crate::common::{free_port, wait_for_port, Proc};
use base64::Engine;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long [`Browser::find`] waits for an element to appear.
const FIND_TIMEOUT: Duration = Duration::from_secs(10);

/// The key under which W3C WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Finds `name` on `PATH`, or fails the test with what to install.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: run `scripts/deps.sh test` (or `apt-get install {package}`)")
        })
}

/// One headless Chromium session driven through its own chromedriver.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    driver_addr: SocketAddr,
    session_id: String,
    _driver: Proc,
    _profile: tempfile::TempDir,
}

/// An element reference from a `find`.
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium whose UI and `Accept-Language`
    /// are `lang` (`en`, `ja`); `host_rules` are extra `--host-resolver-rules`.
    pub async fn start(lang: &str, host_rules: &str) -> Browser {
        Browser::start_with_home(lang, host_rules, None).await
    }

    /// [`Browser::start`] with `$HOME` set to `home`: Chromium takes client
    /// certificates (and CA trust) only from `$HOME/.pki/nssdb`.
    pub async fn start_with_home(lang: &str, host_rules: &str, home: Option<&Path>) -> Browser {
        Browser::start_sized(lang, host_rules, home, (800, 1000)).await
    }

    /// A phone-sized window (e.g. 390×844), for pages meant for phones.
    pub async fn start_phone(lang: &str, host_rules: &str) -> Browser {
        Browser::start_sized(lang, host_rules, None, (390, 844)).await
    }

    async fn start_sized(lang: &str, host_rules: &str, home: Option<&Path>, window: (u32, u32)) -> Browser {
        let chromium = require_tool("chromium", "chromium");
        let chromedriver = require_tool("chromedriver", "chromium-driver");
        let port = free_port();
        let driver_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut command = Command::new(chromedriver);
        if let Some(home) = home {
            command.env("HOME", home);
        }
        let child = command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Proc(child);
        wait_for_port(driver_addr);

        let profile = tempfile::tempdir().unwrap();
        let caps = capabilities(&chromium, profile.path(), lang, host_rules, window);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let base = format!("http://{driver_addr}");
        let (status, v) = send(http.post(format!("{base}/session")).json(&caps)).await;
        let Some(session_id) = v["value"]["sessionId"].as_str().map(str::to_string) else {
            panic!("chromedriver refused a session ({status}): {v}");
        };
        Browser {
            http,
            session: format!("{base}/session/{session_id}"),
            driver_addr,
            session_id,
            _driver: driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn current_url(&self) -> String {
        string(self.get("/url").await)
    }

    /// The first element matching `css`, waiting up to ten seconds for it.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let deadline = Instant::now() + FIND_TIMEOUT;
        loop {
            let mut found = self.find_all(css).await;
            if !found.is_empty() {
                return found.swap_remove(0);
            }
            if Instant::now() > deadline {
                let url = self.current_url().await;
                let source = self.page_source().await;
                panic!("no element matches `{css}` on {url} after {FIND_TIMEOUT:?}:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every element matching `css` now, without waiting.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self.post("/elements", json!({ "using": "css selector", "value": css })).await;
        v.as_array()
            .unwrap_or_else(|| panic!("bad find answer: {v}"))
            .iter()
            .map(|e| Element { browser: self, id: string(e[ELEMENT_KEY].clone()) })
            .collect()
    }

    /// Saves a PNG of the viewport to `path`, creating its directory.
    pub async fn screenshot(&self, path: &Path) {
        let data = string(self.get("/screenshot").await);
        let png = base64::engine::general_purpose::STANDARD.decode(data).expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page
    /// and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// Resizes the window (the viewport follows, less any browser chrome).
    pub async fn set_window(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height })).await;
    }

    /// A Chrome DevTools Protocol command, through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({ "cmd": cmd, "params": params })).await
    }

    /// Reloads the page and waits until the new document is there.
    pub async fn reload(&self) {
        self.mark_page().await;
        self.execute("location.reload();", json!([])).await;
        self.wait_for_new_page().await;
    }

    /// Marks the current document, for [`Browser::wait_for_new_page`].
    pub async fn mark_page(&self) {
        self.execute("window.__oldPage = true;", json!([])).await;
    }

    /// Waits until the document marked by [`Browser::mark_page`] is replaced
    /// by one that has loaded (after a click that navigates, a redirect).
    pub async fn wait_for_new_page(&self) {
        let deadline = Instant::now() + FIND_TIMEOUT;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let v = self.execute("return !window.__oldPage && document.readyState === 'complete';", json!([])).await;
            if v == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "no new page after {FIND_TIMEOUT:?}");
        }
    }

    pub async fn page_source(&self) -> String {
        string(self.get("/source").await)
    }

    async fn get(&self, path: &str) -> Value {
        self.value(self.http.get(format!("{}{path}", self.session)), path).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let req = self.http.post(format!("{}{path}", self.session)).json(&body);
        self.value(req, path).await
    }

    /// The `value` of a successful answer; a WebDriver error fails the test.
    async fn value(&self, req: reqwest::RequestBuilder, path: &str) -> Value {
        let (status, mut v) = send(req).await;
        assert!(status.is_success(), "WebDriver {path}: {status} {v}");
        v["value"].take()
    }
}

impl Element<'_> {
    pub async fn send_keys(&self, text: &str) {
        self.post("/value", json!({ "text": text })).await;
    }

    pub async fn click(&self) {
        self.post("/click", json!({})).await;
    }

    /// The rendered text, as a user would read it.
    pub async fn text(&self) -> String {
        string(self.get("/text").await)
    }

    pub async fn attribute(&self, name: &str) -> Option<String> {
        self.get(&format!("/attribute/{name}")).await.as_str().map(str::to_string)
    }

    async fn get(&self, path: &str) -> Value {
        self.browser.get(&format!("/element/{}{path}", self.id)).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.browser.post(&format!("/element/{}{path}", self.id), body).await
    }
}

impl Drop for Browser {
    /// Best effort: ends the session (and so Chromium) before chromedriver is
    /// killed. Plain blocking HTTP, since a destructor cannot await.
    fn drop(&mut self) {
        let Ok(mut s) = TcpStream::connect_timeout(&self.driver_addr, Duration::from_secs(1)) else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session_id, self.driver_addr
        );
        if s.write_all(request.as_bytes()).is_ok() {
            let _ = s.read_to_end(&mut Vec::new());
        }
    }
}

fn capabilities(chromium: &Path, profile: &Path, lang: &str, host_rules: &str, window: (u32, u32)) -> Value {
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--ignore-certificate-errors",
    ]
    .map(String::from)
    .into();
    args.push(format!("--window-size={},{}", window.0, window.1));
    args.push(format!("--lang={lang}"));
    args.push(format!("--user-data-dir={}", profile.display()));
    if !host_rules.is_empty() {
        args.push(format!("--host-resolver-rules={host_rules}"));
    }
    json!({
        "capabilities": {
            "alwaysMatch": {
                "browserName": "chrome",
                "acceptInsecureCerts": true,
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": args,
                    "prefs": { "intl.accept_languages": lang },
                },
            },
        },
    })
}

async fn send(req: reqwest::RequestBuilder) -> (reqwest::StatusCode, Value) {
    let r = req.send().await.expect("chromedriver answers");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn string(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => panic!("expected a string from WebDriver, got {other}"),
    }
}
