//! `cert issue`: the admin API's `POST /cert/issue` and the CLI side that
//! writes the bundle and PEM files, or prints the download link and its QR code.
//!
//! The API answers once with everything: the bundle (base64), the PEM files
//! and the password. Nothing of it is kept; with `link`, the bundle waits in
//! challenge state for the device to fetch it (see [`crate::devices::link`]).

use super::reply::{reply, AdminReply};
use crate::auth::Auth;
use crate::config::Config;
use crate::devices::ca::write_new;
use crate::devices::issue::{self, IssueError};
use crate::devices::link::{self, LinkPayload};
use crate::devices::pkcs12::Format;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    user: String,
    device: String,
    #[serde(default)]
    legacy: bool,
    #[serde(default)]
    link: bool,
    #[serde(default)]
    adopt_ca: bool,
}

/// `POST /cert/issue` `{"user", "device", "legacy"?, "link"?, "adopt_ca"?}`.
pub async fn handle(cfg: &Config, auth: &Auth, body: &[u8]) -> AdminReply {
    let b: IssueBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return reply(
                400,
                json!({"error": "bad_request", "message": format!("expected {{\"user\": …, \"device\": …, \"legacy\": false, \"link\": false}}: {e}")}),
            )
        }
    };
    let format = if b.legacy { Format::Legacy } else { Format::Modern };
    let req = issue::IssueRequest { user: &b.user, device: &b.device, format, adopt_ca: b.adopt_ca };
    let issued = match issue::issue(cfg, auth.store().as_ref(), req, auth.clock.now()).await {
        Ok(i) => i,
        Err(e) => return refused(&e),
    };
    let r = &issued.record;
    crate::audit!("cert_issue", user = %r.user, device = %r.device, serial = %r.serial, format = %crate::logging::SerdeName(&format), link = b.link);
    let mut out = json!({
        "serial": r.serial, "fingerprint": r.fingerprint, "user": r.user, "device": r.device,
        "issued_at": r.issued_at, "not_after": r.not_after, "format": format, "password": issued.password,
        "cert_pem": issued.cert_pem, "ca_pem": issued.ca_pem,
    });
    let p12 = base64::engine::general_purpose::STANDARD.encode(&issued.p12);
    if !b.link {
        out["p12"] = p12.into();
        out["key_pem"] = issued.key_pem.into();
        return reply(200, out);
    }
    let token = link::new_token();
    let payload = LinkPayload { user: r.user.clone(), device: r.device.clone(), serial: r.serial.clone(), p12 };
    let ttl = cfg.device_certificates.as_ref().map_or(std::time::Duration::from_secs(86_400), |d| d.link_ttl);
    if let Err(e) = link::put(auth.store().as_ref(), &token, &payload, ttl).await {
        return reply(
            503,
            json!({"error": "store_unavailable", "serial": r.serial, "message": format!(
                "certificate {} was registered but its download link could not be stored ({e}); end it with `portcullis admin cert expire {}` and issue again", r.serial, r.serial)}),
        );
    }
    let path = format!("{}?token={token}", link::DOWNLOAD_PATH);
    out["url"] = super::users::app_url(cfg, &r.user, &path).into();
    out["path"] = path.into();
    out["expires_in_secs"] = ttl.as_secs().into();
    reply(200, out)
}

fn refused(e: &IssueError) -> AdminReply {
    let (status, code) = e.status();
    let mut v = json!({"error": code, "message": e.to_string()});
    if let IssueError::Quota(q) = e {
        v["quota"] = serde_json::to_value(q).unwrap_or_default();
    }
    reply(status, v)
}

/// What `portcullis admin cert issue` was given.
pub struct IssueArgs {
    pub user: String,
    pub device: String,
    pub out: Option<PathBuf>,
    pub legacy: bool,
    pub link: bool,
    pub adopt_ca: bool,
}

/// The files written next to the bundle: `<stem>.crt`, `<stem>.key`, `<stem>.ca.crt`.
pub fn pem_paths(p12: &Path) -> [PathBuf; 3] {
    let stem = p12.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "device".into());
    let at = |ext: &str| p12.with_file_name(format!("{stem}.{ext}"));
    [at("crt"), at("key"), at("ca.crt")]
}

/// The CLI: asks the API, then writes files (refusing to overwrite, checked
/// before anything is issued) or prints the link and its QR code.
pub fn run_cli(addr: SocketAddr, token: &str, a: IssueArgs) -> Result<i32, String> {
    let out = match (&a.out, a.link) {
        (Some(_), true) => return Err("--link hands the bundle to the device: give either --link or --out".into()),
        (Some(p), false) => Some(p.clone()),
        (None, false) => Some(PathBuf::from(link::file_name(&a.device))),
        (None, true) => None,
    };
    if let Some(p12) = &out {
        for p in std::iter::once(p12.clone()).chain(pem_paths(p12)) {
            if p.exists() {
                return Err(format!("`{}` exists already: nothing was issued (choose another --out)", p.display()));
            }
        }
    }
    let body = json!({"user": a.user, "device": a.device, "legacy": a.legacy, "link": a.link, "adopt_ca": a.adopt_ca})
        .to_string();
    let (status, text) = super::client::request(addr, "POST", "/cert/issue", token, &body)?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| format!("the admin API answered {status}: {text}"))?;
    if !(200..300).contains(&status) {
        eprintln!("{}", v["message"].as_str().unwrap_or(&text));
        return Ok(1);
    }
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    println!("issued:      serial {} for device `{}` of user `{}`", s("serial"), s("device"), s("user"));
    println!("fingerprint: {} (SHA-256)", s("fingerprint"));
    println!("valid until: {}", crate::clock::iso8601(v["not_after"].as_u64().unwrap_or(0)));
    match out {
        Some(p12) => write_files(&p12, &v)?,
        None => print_link(&v),
    }
    println!("password:    {}   (shown once: give it to the user separately)", s("password"));
    Ok(0)
}

fn write_files(p12: &Path, v: &serde_json::Value) -> Result<(), String> {
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(v["p12"].as_str().unwrap_or_default())
        .map_err(|e| format!("the admin API sent a malformed bundle: {e}"))?;
    let [crt, key, ca] = pem_paths(p12);
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    write_new(p12, &bundle, 0o600)?;
    write_new(&key, s("key_pem").as_bytes(), 0o600)?;
    write_new(&crt, s("cert_pem").as_bytes(), 0o644)?;
    write_new(&ca, s("ca_pem").as_bytes(), 0o644)?;
    println!("bundle:      {} (PKCS#12, {})", p12.display(), s("format"));
    println!("pem:         {} {} {}", crt.display(), key.display(), ca.display());
    Ok(())
}

fn print_link(v: &serde_json::Value) {
    let hours = v["expires_in_secs"].as_u64().unwrap_or(0) as f64 / 3600.0;
    let target = v["url"].as_str().or(v["path"].as_str()).unwrap_or_default();
    if v["url"].is_null() {
        println!("link:        {target} (on any app host of this user: no app admits the user's policy group)");
    } else {
        println!("link:        {target}");
    }
    println!("             works once, for {hours:.0} h; open it on the new device, or scan:");
    if let Ok(code) = qrcode::QrCode::new(target.as_bytes()) {
        let art = code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build();
        println!("{art}");
    }
}
