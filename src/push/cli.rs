//! `portcullis approver`: an approver device on the command line, for
//! desktops and scripts. `enroll LINK` makes a P-256 key and registers it
//! with the link from "Add approval device"; `pending` lists the requests
//! waiting; `decide` answers one; `watch` follows new requests as they come
//! (server-sent events) and asks at the terminal. The key and the device id
//! live in a file of mode 0600 (`--key`, default
//! `~/.config/portcullis/approver.json`).

use super::approver::message;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// What `enroll` keeps.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    /// `https://host:port` the device talks to.
    origin: String,
    device: String,
    user: String,
    /// PKCS#8 DER, base64.
    private_key: String,
}

pub fn default_key_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("portcullis").join("approver.json")
}

/// How to reach the server: an extra CA to trust, a host to resolve by hand.
pub struct Connect<'a> {
    pub ca: Option<&'a Path>,
    pub resolve: Option<(String, std::net::IpAddr)>,
}

fn client(c: &Connect<'_>, origin: &str) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
    if let Some((host, ip)) = &c.resolve {
        let port = reqwest::Url::parse(origin).ok().and_then(|u| u.port_or_known_default()).unwrap_or(443);
        b = b.resolve(host, std::net::SocketAddr::new(*ip, port));
    }
    if let Some(ca) = c.ca {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read `{}`: {e}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("`{}`: {e}", ca.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

fn load(path: &Path) -> Result<(KeyFile, p256::ecdsa::SigningKey), String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("cannot read `{}` ({e}): enroll first with `portcullis approver enroll LINK`", path.display())
    })?;
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let der = STANDARD.decode(&file.private_key).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let key = p256::ecdsa::SigningKey::from_pkcs8_der(&der).map_err(|e| format!("`{}`: {e}", path.display()))?;
    Ok((file, key))
}

fn sign(key: &p256::ecdsa::SigningKey, m: &str) -> String {
    let sig: p256::ecdsa::Signature = key.sign(m.as_bytes());
    URL_SAFE_NO_PAD.encode(sig.to_bytes())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn answer(r: reqwest::Response) -> Result<Value, String> {
    let status = r.status();
    let v: Value = r.json().await.map_err(|e| format!("the server answered {status} without JSON: {e}"))?;
    if status.is_success() {
        Ok(v)
    } else {
        Err(v["message"].as_str().map_or_else(|| format!("the server answered {status}: {v}"), str::to_string))
    }
}

/// `enroll LINK`: registers a new key with the link's single-use code.
pub fn enroll(link: &str, name: &str, key_path: &Path, ca: &Connect<'_>) -> Result<i32, String> {
    let url = reqwest::Url::parse(link).map_err(|e| format!("not a link: {e}"))?;
    if url.scheme() != "https" {
        return Err("the link must be https://".into());
    }
    let code = url
        .fragment()
        .and_then(|f| f.strip_prefix("enroll="))
        .ok_or("the link has no #enroll= code: copy the whole link from \"Add approval device\"")?;
    let origin = url.origin().ascii_serialization();
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let spki = key.verifying_key().to_public_key_der().map_err(|e| e.to_string())?;
    let body = json!({"code": code, "name": name, "public_key": URL_SAFE_NO_PAD.encode(spki.as_bytes())});
    let http = client(ca, &origin)?;
    let v = runtime()?.block_on(async {
        answer(
            http.post(format!("{origin}/.portcullis/api/approver/enroll"))
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?,
        )
        .await
    })?;
    let pkcs8 = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    let file = KeyFile {
        origin,
        device: v["device"].as_str().unwrap_or_default().to_string(),
        user: v["user"].as_str().unwrap_or_default().to_string(),
        private_key: STANDARD.encode(pkcs8.as_bytes()),
    };
    if let Some(dir) = key_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
    write_private(key_path, text.as_bytes())?;
    println!("enrolled device {} for user `{}` ({})", file.device, file.user, key_path.display());
    Ok(0)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    f.write_all(bytes).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

fn signed_query(file: &KeyFile, key: &p256::ecdsa::SigningKey, purpose: &str) -> String {
    let ts = now().to_string();
    let sig = sign(key, &message(purpose, &[&file.device, &ts]));
    format!("device={}&ts={ts}&sig={sig}", file.device)
}

fn print_request(r: &Value) {
    let s = |k: &str| r[k].as_str().map_or_else(|| r[k].to_string(), str::to_string);
    let choices = r["choices"].as_array().map(|c| c.iter().map(Value::to_string).collect::<Vec<_>>().join(" "));
    println!(
        "request {}  app {} ({})  at {}  from {}  {}{}",
        s("id"),
        s("app"),
        s("host"),
        s("at_local"),
        s("from"),
        s("browser"),
        choices.filter(|c| !c.is_empty()).map(|c| format!("  pick one of: {c}")).unwrap_or_default()
    );
}

/// `pending`: the requests waiting for this device's user.
pub fn pending(key_path: &Path, ca: &Connect<'_>) -> Result<i32, String> {
    let (file, key) = load(key_path)?;
    let http = client(ca, &file.origin)?;
    let url = format!("{}/.portcullis/api/approver/pending?{}", file.origin, signed_query(&file, &key, "pending"));
    let v = runtime()?.block_on(async { answer(http.get(url).send().await.map_err(|e| e.to_string())?).await })?;
    let list = v["requests"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no sign-in request is waiting");
    }
    list.iter().for_each(print_request);
    Ok(0)
}

/// `decide REQUEST (--number N | --deny | --not-me)`.
pub fn decide(
    key_path: &Path,
    ca: &Connect<'_>,
    request: &str,
    number: Option<u8>,
    decision: &str,
) -> Result<i32, String> {
    let (file, key) = load(key_path)?;
    let http = client(ca, &file.origin)?;
    let result = runtime()?.block_on(send_decision(&http, &file, &key, request, number, decision))?;
    println!("{result}");
    Ok(0)
}

async fn send_decision(
    http: &reqwest::Client,
    file: &KeyFile,
    key: &p256::ecdsa::SigningKey,
    request: &str,
    number: Option<u8>,
    decision: &str,
) -> Result<String, String> {
    let number = number.map(|n| n.to_string()).unwrap_or_default();
    let sig = sign(key, &message("decide", &[&file.device, request, &number, decision]));
    let body = json!({"device": file.device, "request": request, "number": number, "decision": decision, "sig": sig});
    let url = format!("{}/.portcullis/api/approver/decide", file.origin);
    let v = answer(http.post(url).json(&body).send().await.map_err(|e| e.to_string())?).await?;
    Ok(format!("request {request}: {}", v["result"].as_str().unwrap_or("answered")))
}

/// `watch`: follows requests as they come and asks at the terminal.
pub fn watch(key_path: &Path, ca: &Connect<'_>) -> Result<i32, String> {
    let (file, key) = load(key_path)?;
    let http = client(ca, &file.origin)?;
    runtime()?.block_on(async {
        loop {
            let url =
                format!("{}/.portcullis/api/approver/events?{}", file.origin, signed_query(&file, &key, "events"));
            let mut r =
                http.get(url).timeout(std::time::Duration::from_secs(3600)).send().await.map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(answer(r).await.err().unwrap_or_default());
            }
            println!("watching for sign-in requests of `{}` (Ctrl-C to stop)", file.user);
            let mut buf = String::new();
            while let Ok(Some(chunk)) = r.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("");
                    if block.starts_with("event: request") {
                        let req: Value = serde_json::from_str(data).unwrap_or_default();
                        print_request(&req);
                        let (number, decision) = ask(&req);
                        let id = req["id"].as_str().unwrap_or_default();
                        match send_decision(&http, &file, &key, id, number, decision).await {
                            Ok(line) => println!("{line}"),
                            Err(e) => eprintln!("{e}"),
                        }
                    }
                }
            }
        }
    })
}

/// Asks at the terminal: a number (approve), `d` (deny) or `n` (not me).
fn ask(req: &Value) -> (Option<u8>, &'static str) {
    let matching = req["number_matching"].as_bool().unwrap_or(true);
    let prompt = if matching {
        "type the number shown in the browser to approve, d to deny, n if this wasn't you: "
    } else {
        "a to approve, d to deny, n if this wasn't you: "
    };
    eprint!("{prompt}");
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return (None, "deny");
    }
    match line.trim() {
        "d" => (None, "deny"),
        "n" => (None, "not_me"),
        "a" if !matching => (None, "approve"),
        n => match n.parse::<u8>() {
            Ok(n) if matching => (Some(n), "approve"),
            _ => (None, "deny"),
        },
    }
}
