//! The command line: parse arguments and call into the library. Exit codes:
//! 0 ok, 1 the thing checked is bad (config errors, failed reload), 2 usage or I/O.

use crate::clock::Clock;
use crate::config::{self, Config};
use crate::policy::decide::{decide, Action, Level, SessionFacts};
use crate::policy::expr::Facts;
mod admin;

use clap::{Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;

/// `--version`: the package version and the commit it was built from.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PORTCULLIS_COMMIT"), ")");

#[derive(Parser)]
#[command(name = "portcullis", version = VERSION, about = "Access-control reverse proxy")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print shell completions: `portcullis completions bash > /etc/bash_completion.d/portcullis`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// An approver device on the command line: answers push sign-in requests.
    Approver {
        /// Where the device's key lives (mode 0600).
        #[arg(long, global = true)]
        key: Option<PathBuf>,
        /// A CA certificate (PEM) to trust besides the system's (e.g. a development CA).
        #[arg(long, global = true)]
        ca: Option<PathBuf>,
        /// Connect to this address for the link's host, as `HOST=IP` (like curl's --resolve).
        #[arg(long, global = true, value_name = "HOST=IP")]
        resolve: Option<String>,
        #[command(subcommand)]
        action: ApproverAction,
    },
    /// Serve: the HTTPS proxy, the optional HTTP redirect and the admin API.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config: a one-line summary, or every error with file:line:column.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// What would the policy do for this request? Prints one JSON object; starts nothing.
    Decide {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long, required_unless_present = "replay")]
        host: Option<String>,
        /// The client address; an IPv4-mapped one (`::ffff:10.1.2.3`) counts
        /// as IPv4, as it does in the proxy.
        #[arg(long, required_unless_present = "replay")]
        ip: Option<IpAddr>,
        /// Re-decide the requests a log recorded (JSON lines: audit
        /// `request_refused` and `access` events) under this config, and list
        /// those whose outcome would change.
        #[arg(long, value_name = "LOG.jsonl", conflicts_with_all = ["host", "ip", "user", "pass", "cert", "entrance_pass", "device_cert", "at", "pass_age"])]
        replay: Option<PathBuf>,
        /// Decide at this moment instead of now (RFC 3339 with its offset,
        /// e.g. 2026-12-07T21:00:00+09:00): what `time(…)`, `weekday(…)`,
        /// `date(…)` and `entrance_pass_age` read, in `[policy] time_zone`.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Simulate a signed-in session of this user (first factor done).
        #[arg(long)]
        user: Option<String>,
        /// The session has also completed a second factor.
        #[arg(long, requires = "user")]
        second_factor: bool,
        #[arg(long, conflicts_with = "pass")]
        entrance_pass: bool,
        /// With `--entrance-pass`: how long before `--at` the pass was issued
        /// (e.g. `40d`), for `entrance_pass_age` (default: just issued).
        #[arg(long, value_name = "AGE", requires = "entrance_pass")]
        pass_age: Option<String>,
        /// An entrance pass (the `__Host-portcullis-pass` cookie's value): does
        /// it make `entrance_pass` true for `--user`? Asks the running
        /// instance's admin API (its keys and revocations).
        #[arg(long, value_name = "COOKIE", requires = "user")]
        pass: Option<String>,
        #[arg(long, conflicts_with = "cert")]
        device_cert: bool,
        /// A device certificate (PEM, leaf first): does it make `device_cert`
        /// true? Checks the chain against the device CA and asks the running
        /// instance's admin API for its registry status.
        #[arg(long, value_name = "FILE.pem")]
        cert: Option<PathBuf>,
    },
    /// Talk to a running portcullis through its admin API.
    Admin {
        /// Config file to read the admin address and token file from.
        #[arg(long, short, default_value = "config/portcullis.toml")]
        config: PathBuf,
        #[command(subcommand)]
        action: admin::AdminAction,
    },
    /// Certificates.
    Certs {
        #[command(subcommand)]
        action: CertsAction,
    },
    /// Hash a password (argon2id) for the users file; reads it without echo, or from stdin.
    HashPassword {
        #[arg(long)]
        stdin: bool,
    },
}

#[derive(Subcommand)]
enum ApproverAction {
    /// Enroll this machine with the link of "Add approval device" (works once, 10 minutes).
    Enroll {
        link: String,
        /// The name shown when requests are listed (default: this machine's host name).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the sign-in requests waiting for an answer.
    Pending,
    /// Answer one request: approve with the number the browser shows, or deny.
    Decide {
        request: String,
        #[arg(long, conflicts_with_all = ["deny", "not_me"])]
        number: Option<u8>,
        /// Approve without a number (groups with push_number_matching = false).
        #[arg(long, conflicts_with_all = ["deny", "not_me", "number"])]
        approve: bool,
        #[arg(long, conflicts_with = "not_me")]
        deny: bool,
        /// "This wasn't me": deny, block further pushes for a while, and count a failure.
        #[arg(long)]
        not_me: bool,
    },
    /// Follow requests as they come, and answer each at the terminal.
    Watch,
}

#[derive(Subcommand)]
enum CertsAction {
    /// Make a development CA and a server certificate for local hosts.
    Dev {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Host names and IPs for the server certificate (wildcards such as `*.localhost` are refused by browsers and curl: list each name).
        #[arg(long = "host", default_values_t = ["localhost".to_string(), "demo.localhost".to_string(), "wiki.localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()])]
        hosts: Vec<String>,
    },
}

pub fn main() -> i32 {
    crate::logging::init(&crate::config::logs::LogSettings::default());
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => crate::proxy::server::run(&config).map(|_| 0),
        Command::Check { config } => Ok(check(&config)),
        Command::Decide { config, replay: Some(log), .. } => load(&config).and_then(|c| replay(&c, &log)),
        Command::Decide {
            config,
            host,
            ip,
            user,
            second_factor,
            entrance_pass,
            pass_age,
            pass,
            device_cert,
            cert,
            at,
            replay: None,
        } => {
            let (Some(host), Some(ip)) = (host, ip) else { return 2 };
            load(&config).and_then(|c| {
                let now = at.as_deref().map_or_else(|| Ok(crate::clock::SystemClock.now()), moment)?;
                let verdict = cert.map(|p| cert_verdict(&c, &p, &host, user.as_deref())).transpose()?;
                let device_cert = verdict.as_ref().map_or(device_cert, |v| v.counts);
                let pass_verdict =
                    pass.map(|p| pass_verdict(&c, &p, user.as_deref().unwrap_or_default())).transpose()?;
                let issued_at = match (&pass_verdict, entrance_pass) {
                    (Some(v), _) => v.issued_at.filter(|_| v.counts),
                    (None, true) => Some(now.saturating_sub(pass_age.as_deref().map_or(Ok(0), age)?)),
                    (None, false) => None,
                };
                let facts = Facts { networks: c.networks.lookup(ip), device_cert, now, ..Facts::default() };
                simulate(&c, &host, facts.with_pass(issued_at), user.as_deref(), second_factor).map(|mut v| {
                    v["client_ip"] = ip.to_canonical().to_string().into();
                    if let Some(verdict) = verdict {
                        v["device_cert"] = verdict.json;
                    }
                    if let Some(verdict) = pass_verdict {
                        v["entrance_pass"] = verdict.json;
                    }
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    0
                })
            })
        }
        Command::Admin { config, action } => admin::run(&config, action),
        Command::Certs { action: CertsAction::Dev { dir, hosts } } => certs_dev(&dir, &hosts),
        Command::HashPassword { stdin } => hash_password(stdin),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "portcullis", &mut script);
            // A closed pipe (`| head`) is the reader's choice, not an error.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(0)
        }
        Command::Approver { key, ca, resolve, action } => approver(key, ca.as_deref(), resolve.as_deref(), action),
    };
    result.unwrap_or_else(|e| {
        eprintln!("portcullis: {e}");
        2
    })
}

fn load(path: &std::path::Path) -> Result<Config, String> {
    crate::tls::install_crypto_provider();
    config::load(path).map_err(|e| format!("the config has errors:\n{e}"))
}

fn check(path: &std::path::Path) -> i32 {
    crate::tls::install_crypto_provider();
    match config::load(path) {
        Ok(c) => {
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            match crate::store::redis::check_server(&c.server.store) {
                Ok(warnings) => warnings.iter().for_each(|w| eprintln!("warning: {w}")),
                Err(e) => {
                    eprintln!("error: {e}");
                    return 1;
                }
            }
            println!("{}", c.summary());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{} error(s)", e.0.len());
            1
        }
    }
}

/// The `decide` simulator: the same pure decision the proxy makes.
/// `decide --replay`: the changed requests as JSON lines on stdout, a summary on stderr.
fn replay(c: &Config, log: &std::path::Path) -> Result<i32, String> {
    let file = std::fs::File::open(log).map_err(|e| format!("cannot read the log `{}`: {e}", log.display()))?;
    let r = crate::replay::replay(c, std::io::BufReader::new(file))
        .map_err(|e| format!("cannot read the log `{}`: {e}", log.display()))?;
    for v in &r.changed {
        println!("{v}");
    }
    eprintln!(
        "{} of {} recorded requests would change under {}{}{}",
        r.changed.len(),
        r.decided,
        c.path.display(),
        if r.undecidable.is_empty() { String::new() } else { format!("; {} cannot be decided", r.undecidable.len()) },
        if r.unreadable == 0 { String::new() } else { format!("; {} lines are not JSON", r.unreadable) },
    );
    for u in r.undecidable.iter().take(10) {
        eprintln!("  cannot decide: {u}");
    }
    Ok(0)
}

pub fn simulate(
    c: &Config,
    host: &str,
    facts: Facts,
    user: Option<&str>,
    second_factor: bool,
) -> Result<serde_json::Value, String> {
    let app_id = c.hosts.lookup(host).ok_or_else(|| format!("no app serves host `{host}`"))?;
    let app = c.app(app_id);
    let user =
        user.map(|u| c.users.get(u).ok_or_else(|| format!("no user named `{u}` in the users file"))).transpose()?;
    let level = if second_factor { Level::BothFactors } else { Level::FirstFactor };
    let session = user.map(|u| SessionFacts { group: u.policy_group, level });
    // As the proxy: the local time of `facts.now`, and the user's groups.
    let groups = user.map_or(crate::policy::expr::GroupMask::EMPTY, |u| u.group_mask);
    let facts = c.facts_at(Facts { groups, ..facts }, facts.now);
    let group = user.map(|u| &c.groups[u.policy_group]);
    let d = decide(app, &c.groups, &facts, session.as_ref());
    // As the proxy: `require` answers 403 before the policy is asked.
    if app.device_cert == config::DeviceCertMode::Require && !facts.device_cert {
        return Ok(serde_json::json!({
            "action": "deny",
            "app": app.name,
            "rule": format!("app.{}.device_cert (require: no device certificate that counts)", app.name),
            "device_cert_mode": app.device_cert,
        }));
    }
    let action = match d.action {
        Action::Forward => "forward",
        Action::Deny => "deny",
        Action::Challenge(crate::policy::decide::Challenge::Login) => "challenge_login",
        Action::Challenge(crate::policy::decide::Challenge::SecondFactor) => "challenge_second_factor",
    };
    let networks: Vec<&str> = (0..c.networks.len() as u8)
        .map(crate::policy::ip::NetworkId)
        .filter(|&id| facts.networks.contains(id))
        .map(|id| c.networks.name(id))
        .collect();
    Ok(serde_json::json!({
        "action": action,
        "app": app.name,
        "policy_group": group.map(|g| g.name.as_str()),
        "allowed": group.map(|g| g.allow.eval(&facts) && app.admits(user.map_or(0, |u| u.policy_group))),
        "otp_required": group.map(|g| !g.otp_skip.eval(&facts)),
        "rule": d.rule_name(app, group),
        "networks": networks,
        "at": c.policy.zone.describe(facts.now),
        "entrance_pass_issued_at": facts.entrance_pass.then(|| crate::clock::iso8601(facts.pass_issued_at)),
        "bypass": app.bypass.eval(&facts),
        "device_cert_mode": app.device_cert,
    }))
}

/// What `decide --cert` found: whether the certificate makes `device_cert`
/// true for this request, and why (as JSON).
struct CertVerdict {
    counts: bool,
    json: serde_json::Value,
    /// A pass's issue time (`decide --pass`), for `entrance_pass_age`.
    issued_at: Option<u64>,
}

/// `--at`: an RFC 3339 time with its offset, as Unix seconds.
fn moment(text: &str) -> Result<u64, String> {
    let ts: jiff::Timestamp = text.trim().parse().map_err(|e| {
        format!("--at: `{text}` is not a time such as 2026-12-07T21:00:00+09:00 (RFC 3339, with its offset): {e}")
    })?;
    u64::try_from(ts.as_second()).map_err(|_| format!("--at: `{text}` is before 1970"))
}

/// `--pass-age`: a duration (`40d`) in seconds.
fn age(text: &str) -> Result<u64, String> {
    crate::config::duration::parse(text).map(|d| d.as_secs()).map_err(|e| format!("--pass-age: {e}"))
}

/// The proxy's checks for one entrance pass: `[entrance_pass]` configured,
/// then the running instance's verdict on the cookie (signature with its
/// keys, expiry, revocation), then whose pass it is. A browser's request is
/// assumed (from an app or a script no pass counts at all).
fn pass_verdict(c: &Config, cookie: &str, user: &str) -> Result<CertVerdict, String> {
    let verdict = |counts: bool, why: String, extra: serde_json::Value| {
        let mut json = serde_json::json!({"counts": counts, "why": why});
        let issued_at = extra["issued_at_utc"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let issued_at = issued_at.and_then(|t| u64::try_from(t.as_second()).ok());
        if let (Some(o), Some(e)) = (json.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        Ok(CertVerdict { counts, json, issued_at })
    };
    if c.entrance_pass.is_none() {
        return verdict(
            false,
            "the config has no [entrance_pass]: passes are not counted".into(),
            serde_json::json!({}),
        );
    }
    let token = crate::admin::api::read_token(&c.admin.token_file)?;
    let body = serde_json::json!({ "cookie": cookie }).to_string();
    let (status, text) = crate::admin::client::request(c.admin.listen, "POST", "/pass/check", &token, &body)
        .map_err(|e| format!("--pass: the running instance's admin API is needed to check a pass: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| format!("--pass: the admin API answered {status}: {text}"))?;
    if status != 200 {
        return Err(format!("--pass: the admin API answered {status}: {text}"));
    }
    if v["valid"] != true {
        return verdict(false, v["why"].as_str().unwrap_or("not a valid pass").to_string(), serde_json::json!({}));
    }
    let owner = v["user"].as_str().unwrap_or_default().to_string();
    let extra = serde_json::json!({"id": v["id"], "user": owner, "issued_at_utc": v["issued_at_utc"],
                                   "expires_at_utc": v["expires_at_utc"]});
    if owner != user {
        return verdict(false, format!("it is `{owner}`'s pass, the session is `{user}`'s"), extra);
    }
    verdict(true, format!("valid, unrevoked, user `{owner}` (on a browser's request)"), extra)
}

/// The proxy's checks for one certificate, in its order: the handshake's chain
/// check against the device CA, then the registry (through the running
/// instance's admin API, `POST /cert/list`: the store's records, status at
/// the instance's clock), the user the certificate names, the session's user
/// (`--user`), and the app's `device_cert` mode.
fn cert_verdict(c: &Config, pem: &std::path::Path, host: &str, user: Option<&str>) -> Result<CertVerdict, String> {
    let dc = c
        .device_certificates
        .as_ref()
        .ok_or("--cert: the config has no [device_certificates] (no device CA: no certificate counts)")?;
    let chain = crate::tls::read_cert_chain(pem)?;
    let peer = crate::tls::PeerDeviceCert::of(&chain[0]);
    let mut json = serde_json::json!({
        "file": pem.display().to_string(),
        "fingerprint": peer.fingerprint,
        "names_user": peer.user,
    });
    let verdict = |mut json: serde_json::Value, counts: bool, why: String| {
        json["counts"] = counts.into();
        json["why"] = why.into();
        Ok(CertVerdict { counts, json, issued_at: None })
    };
    let (ca_cert, _) = crate::devices::ca::paths(dc, &c.server.state_dir);
    let verifier = crate::tls::device_client_verifier(&ca_cert)?;
    let now = rustls::pki_types::UnixTime::now();
    if let Err(e) = verifier.verify_client_cert(&chain[0], &chain[1..], now) {
        let why = format!("the TLS handshake refuses it (the connection fails, for every app): {e}");
        return verdict(json, false, why);
    }
    let token = crate::admin::api::read_token(&c.admin.token_file)?;
    let (status, text) = crate::admin::client::request(c.admin.listen, "POST", "/cert/list", &token, "{}")
        .map_err(|e| format!("--cert: the registry is read from the running portcullis's admin API: {e}"))?;
    let list: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status != 200 {
        return Err(format!("--cert: the admin API answered {status}: {}", list["message"].as_str().unwrap_or(&text)));
    }
    let record = list["certificates"].as_array().and_then(|a| a.iter().find(|r| r["fingerprint"] == peer.fingerprint));
    let Some(record) = record else {
        return verdict(json, false, "signed by the device CA but not in the registry".into());
    };
    for k in ["serial", "user", "device", "status"] {
        json[k] = record[k].clone();
    }
    let registered = record["user"].as_str().unwrap_or_default();
    let status = record["status"].as_str().unwrap_or_default();
    let app = c.hosts.lookup(host).map(|id| c.app(id));
    let why = if !matches!(status, "active" | "expiring") {
        format!("its registry status is {status}")
    } else if peer.user.as_deref() != Some(registered) {
        format!("it names user {:?}, the registry user `{registered}`", peer.user)
    } else if user.is_some_and(|u| u != registered) {
        format!("it is `{registered}`'s certificate, the session is `{}`'s", user.unwrap_or_default())
    } else if let Some(app) = app.filter(|a| a.device_cert == config::DeviceCertMode::Off) {
        format!("app `{}` has device_cert = \"off\": certificates are not looked at", app.name)
    } else {
        return verdict(json, true, format!("registered, {status}, user `{registered}`"));
    };
    verdict(json, false, why)
}

fn approver(
    key: Option<PathBuf>,
    ca: Option<&std::path::Path>,
    resolve: Option<&str>,
    action: ApproverAction,
) -> Result<i32, String> {
    use crate::push::cli;
    crate::tls::install_crypto_provider();
    let key = key.unwrap_or_else(cli::default_key_path);
    let resolve = match resolve {
        Some(r) => {
            let (host, ip) = r.split_once('=').ok_or("--resolve: write HOST=IP")?;
            let ip: std::net::IpAddr = ip.parse().map_err(|_| format!("--resolve: `{ip}` is not an IP address"))?;
            Some((host.to_string(), ip))
        }
        None => None,
    };
    let ca = cli::Connect { ca, resolve };
    let ca = &ca;
    match action {
        ApproverAction::Enroll { link, name } => {
            let name = name.unwrap_or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "desktop".into())
            });
            cli::enroll(&link, &name, &key, ca)
        }
        ApproverAction::Pending => cli::pending(&key, ca),
        ApproverAction::Decide { request, number, approve, deny, not_me } => {
            let decision = match (number.is_some() || approve, deny, not_me) {
                (true, false, false) => "approve",
                (false, true, false) => "deny",
                (false, false, true) => "not_me",
                _ => return Err("say --number N (or --approve), --deny or --not-me".into()),
            };
            cli::decide(&key, ca, &request, number, decision)
        }
        ApproverAction::Watch => cli::watch(&key, ca),
    }
}

fn certs_dev(dir: &std::path::Path, hosts: &[String]) -> Result<i32, String> {
    crate::tls::install_crypto_provider();
    let out = crate::tls::make_dev_certs(dir, hosts)?;
    println!("development CA:      {}", out.ca_cert.display());
    println!("server certificate:  {} (for {})", out.server_cert.display(), hosts.join(", "));
    println!("server key:          {}", out.server_key.display());
    Ok(0)
}

fn hash_password(from_stdin: bool) -> Result<i32, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use std::io::IsTerminal;
    // Piped in (`echo pw | portcullis hash-password`): one line, no prompt.
    let password = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let p = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if p != again {
            return Err("the two passwords differ".into());
        }
        p
    };
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    let hash = argon2::Argon2::default().hash_password(password.as_bytes(), &salt).map_err(|e| e.to_string())?;
    println!("{hash}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approver_device_id_may_begin_with_a_hyphen() {
        // Device ids are random base64url: one in 64 begins with `-`.
        let cli = Cli::try_parse_from(["portcullis", "admin", "approver", "remove", "carol", "-x1Yz_w"]);
        let Ok(Cli { command: Command::Admin { action, .. } }) = cli else { panic!("not parsed as a device id") };
        let admin::AdminAction::Approver { action: admin::AdminApproverAction::Remove { device, .. } } = action else {
            panic!("not `approver remove`")
        };
        assert_eq!(device, "-x1Yz_w");
    }
}
