//! The command line: parse arguments and call into the library. Exit codes:
//! 0 ok, 1 the thing checked is bad (config errors, failed reload), 2 usage or I/O.

use crate::config::{self, Config};
use crate::policy::decide::{decide, Action, Level, SessionFacts};
use crate::policy::expr::Facts;
use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
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
        #[arg(long, value_name = "LOG.jsonl", conflicts_with_all = ["host", "ip", "user", "pass", "cert", "entrance_pass", "device_cert"])]
        replay: Option<PathBuf>,
        /// Simulate a signed-in session of this user (first factor done).
        #[arg(long)]
        user: Option<String>,
        /// The session has also completed a second factor.
        #[arg(long, requires = "user")]
        second_factor: bool,
        #[arg(long, conflicts_with = "pass")]
        entrance_pass: bool,
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
        action: AdminAction,
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
enum AdminAction {
    /// Reload the config; prints the errors and keeps the old config when it is bad.
    Reload,
    /// Is it up? Prints the health report, with the last reload.
    Health,
    /// The Prometheus metrics.
    Metrics,
    /// List locked users, with when and why.
    Locked,
    /// Unlock one or several users.
    Unlock { users: Vec<String> },
    /// Remove a user's authenticator (a lost phone) and sign them out everywhere.
    RevokeTotp { user: String },
    /// Sign a user out everywhere.
    SignOut { user: String },
    /// A single-use link with which a user may enroll an authenticator from anywhere.
    EnrollLink { user: String },
    /// Start signing cookies with a new key (the previous one still verifies).
    RotateKeys,
    /// Move durable state between stores (JSON lines on stdout / stdin).
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Device certificates: issue, list, replace, and the license quota.
    Cert {
        #[command(subcommand)]
        action: CertAction,
    },
    /// Approver devices (push approval): list, a link to add one, remove.
    Approver {
        #[command(subcommand)]
        action: AdminApproverAction,
    },
    /// Entrance passes: list them, revoke one or all of a user's.
    Pass {
        #[command(subcommand)]
        action: PassAction,
    },
    /// The users: role, policy group, second factors, lock.
    Users {
        /// Only users whose name, display name or email contains this (any case).
        #[arg(long)]
        search: Option<String>,
    },
    /// The audit file's lines, newest first, one per line (needs `[log] audit_file`).
    Audit {
        /// Who acted: `token:admin`, an administrator, or (login events) the user.
        #[arg(long)]
        actor: Option<String>,
        /// An admin act (`unlock`, `revoke_totp`, …) or an admin call's route.
        #[arg(long)]
        action: Option<String>,
        /// Whom it was about: the user (or certificate serial) acted on.
        #[arg(long)]
        target: Option<String>,
        /// `result`, a login step's `outcome`, or an admin call's status.
        #[arg(long)]
        result: Option<String>,
        /// The event: `admin_action`, `admin_call`, `login_step`, `factor_failed`, …
        #[arg(long)]
        event: Option<String>,
        /// Lines from this Unix time on.
        #[arg(long)]
        since: Option<u64>,
        /// At most this many lines (1 to 1000).
        #[arg(long, default_value_t = 200)]
        limit: u64,
    },
    /// Email a user a single-use enrollment link; they finish with the activation PIN you tell them.
    Invite {
        user: String,
        /// Ask for the activation PIN (4–8 digits) twice, without echo.
        #[arg(long, conflicts_with_all = ["pin_stdin", "resend", "cancel"])]
        pin_prompt: bool,
        /// Read the PIN from the first line of stdin (scripts).
        #[arg(long, conflicts_with_all = ["resend", "cancel"])]
        pin_stdin: bool,
        /// The address to send to (default: the user's `email` in the users file).
        #[arg(long)]
        email: Option<String>,
        /// What the invitation enrolls: `totp` (default) or `approver`.
        #[arg(long)]
        kind: Option<String>,
        /// The mail's language: `en` or `ja` (default: the user's `lang`, else `en`).
        #[arg(long)]
        lang: Option<String>,
        /// Mail a pending invitation again, with a new link (same PIN).
        #[arg(long, conflicts_with = "cancel")]
        resend: bool,
        /// Void the user's invitation.
        #[arg(long)]
        cancel: bool,
    },
    /// Every invitation: pending, used, expired or voided, and mail failures.
    Invitations,
    /// Outgoing mail: check the `[mail]` relay settings.
    Mail {
        #[command(subcommand)]
        action: MailAction,
    },
}

#[derive(Subcommand)]
enum MailAction {
    /// Send a test message with the config's `[mail]` settings (from this
    /// process, not through the running instance); exits 1 when it was not sent.
    Test { address: String },
}

#[derive(Subcommand)]
enum AdminApproverAction {
    /// A user's approver devices.
    List { user: String },
    /// A single-use link (10 minutes) with which the user adds an approver device.
    Link { user: String },
    /// Remove one of a user's approver devices.
    Remove { user: String, device: String },
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
enum PassAction {
    /// List entrance passes (of one user) with browser, where issued, last seen.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke one pass by id, or every pass of `--user`; on every instance at once.
    Revoke {
        /// The pass id (`pass…`, from `pass list`).
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
enum CertAction {
    /// Issue a device certificate: a PKCS#12 bundle (and PEM files) with a
    /// password shown once, or a single-use download link with its QR code.
    Issue {
        #[arg(long)]
        user: String,
        /// The device's name (the certificate's CN), e.g. `alice-laptop`.
        #[arg(long)]
        device: String,
        /// Where to write the bundle (default `<device>.p12`); the PEM files go next to it.
        #[arg(long, conflicts_with = "link")]
        out: Option<PathBuf>,
        /// 3DES and a SHA-1 MAC, for keychains that refuse AES bundles (macOS, iOS, older Windows and Android).
        #[arg(long)]
        legacy: bool,
        /// Print a single-use download link (and its QR code) instead of writing files.
        #[arg(long)]
        link: bool,
        /// Make this instance's device CA the one certificates are issued with
        /// (after replacing the CA on every instance on purpose).
        #[arg(long)]
        adopt_ca: bool,
    },
    /// List device certificates with their status and when they stop working (UTC).
    List {
        #[arg(long)]
        user: Option<String>,
        /// Only certificates that still work and stop working within this time, e.g. `14d`.
        #[arg(long)]
        expiring_within: Option<String>,
    },
    /// Replace a device: the certificate keeps working for exactly 90 days,
    /// counts 0 toward the license at once, and uses one of the window's allowance.
    SetExpiring { serial: String },
    /// End a certificate now.
    Expire { serial: String },
    /// Revoke a certificate now (a lost or compromised device).
    Revoke { serial: String },
    /// Contracted, active, expiring, expired, set-expiring uses in the 350-day window and what is left.
    Usage,
}

#[derive(Subcommand)]
enum StoreAction {
    /// Print every durable record as JSON lines.
    Export,
    /// Read JSON lines from stdin into the running instance's store.
    Import,
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
            pass,
            device_cert,
            cert,
            replay: None,
        } => {
            let (Some(host), Some(ip)) = (host, ip) else { return 2 };
            load(&config).and_then(|c| {
                let verdict = cert.map(|p| cert_verdict(&c, &p, &host, user.as_deref())).transpose()?;
                let device_cert = verdict.as_ref().map_or(device_cert, |v| v.counts);
                let pass_verdict =
                    pass.map(|p| pass_verdict(&c, &p, user.as_deref().unwrap_or_default())).transpose()?;
                let entrance_pass = pass_verdict.as_ref().map_or(entrance_pass, |v| v.counts);
                let facts = Facts { networks: c.networks.lookup(ip), entrance_pass, device_cert, invitation: false };
                simulate(&c, &host, facts, user.as_deref(), second_factor).map(|mut v| {
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
        Command::Admin { config, action } => admin(&config, action),
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
            if let Some(w) = crate::store::redis::persistence_warning(&c.server.store) {
                eprintln!("warning: {w}");
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
        "bypass": app.bypass.eval(&facts),
        "device_cert_mode": app.device_cert,
    }))
}

/// What `decide --cert` found: whether the certificate makes `device_cert`
/// true for this request, and why (as JSON).
struct CertVerdict {
    counts: bool,
    json: serde_json::Value,
}

/// The proxy's checks for one entrance pass: `[entrance_pass]` configured,
/// then the running instance's verdict on the cookie (signature with its
/// keys, expiry, revocation), then whose pass it is. A browser's request is
/// assumed (from an app or a script no pass counts at all).
fn pass_verdict(c: &Config, cookie: &str, user: &str) -> Result<CertVerdict, String> {
    let verdict = |counts: bool, why: String, extra: serde_json::Value| {
        let mut json = serde_json::json!({"counts": counts, "why": why});
        if let (Some(o), Some(e)) = (json.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        Ok(CertVerdict { counts, json })
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
    let extra = serde_json::json!({"id": v["id"], "user": owner, "expires_at_utc": v["expires_at_utc"]});
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
        Ok(CertVerdict { counts, json })
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

fn admin(config_path: &std::path::Path, action: AdminAction) -> Result<i32, String> {
    let c = load(config_path)?;
    if let AdminAction::Mail { action: MailAction::Test { address } } = &action {
        return mail_test(&c, address);
    }
    let token = crate::admin::api::read_token(&c.admin.token_file)?;
    let addr: SocketAddr = c.admin.listen;
    if let AdminAction::Cert { action } = action {
        use crate::admin::certs::{run_cli, CertCommand};
        return match action {
            CertAction::Issue { user, device, out, legacy, link, adopt_ca } => {
                let args = crate::admin::cert_issue::IssueArgs { user, device, out, legacy, link, adopt_ca };
                crate::admin::cert_issue::run_cli(addr, &token, args)
            }
            CertAction::List { user, expiring_within } => {
                run_cli(addr, &token, CertCommand::List { user, expiring_within })
            }
            CertAction::SetExpiring { serial } => run_cli(addr, &token, CertCommand::SetExpiring { serial }),
            CertAction::Expire { serial } => run_cli(addr, &token, CertCommand::Expire { serial }),
            CertAction::Revoke { serial } => run_cli(addr, &token, CertCommand::Revoke { serial }),
            CertAction::Usage => run_cli(addr, &token, CertCommand::Usage),
        };
    }
    if let AdminAction::Pass { action } = action {
        use crate::admin::passes::run_cli;
        return match action {
            PassAction::List { user } => run_cli(addr, &token, "/pass/list", serde_json::json!({ "user": user })),
            PassAction::Revoke { id: Some(id), user: None } => {
                run_cli(addr, &token, "/pass/revoke", serde_json::json!({ "id": id }))
            }
            PassAction::Revoke { id: None, user: Some(user) } => {
                run_cli(addr, &token, "/pass/revoke", serde_json::json!({ "user": user }))
            }
            PassAction::Revoke { .. } => Err("name a pass id, or --user USER for all of a user's passes".into()),
        };
    }
    if let AdminAction::Users { search } = &action {
        return crate::admin::directory::run_cli(addr, &token, search.as_deref());
    }
    if let AdminAction::Audit { actor, action, target, result, event, since, limit } = action {
        let filter = serde_json::json!({
            "actor": actor, "action": action, "target": target, "result": result,
            "event": event, "since": since, "limit": limit,
        });
        return crate::admin::audit_read::run_cli(addr, &token, filter);
    }
    if let AdminAction::Invite { user, pin_prompt, pin_stdin, email, kind, lang, resend, cancel } = action {
        let (path, body) = if resend || cancel {
            (if resend { "/invite/resend" } else { "/invite/cancel" }, serde_json::json!({ "user": user }))
        } else {
            let pin = read_pin(pin_prompt, pin_stdin)?;
            ("/invite", serde_json::json!({ "user": user, "pin": pin, "email": email, "kind": kind, "lang": lang }))
        };
        let (status, body) = crate::admin::client::request(addr, "POST", path, &token, &body.to_string())?;
        print!("{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if let Some(reason) = v["mail_error"].as_str().filter(|_| v["mail_sent"] == false) {
            eprintln!(
                "mail not sent: {reason}; the invitation stays pending: `portcullis admin invite {user} --resend`"
            );
        }
        return Ok(if status == 200 { 0 } else { 1 });
    }
    let one = |u: &String| serde_json::json!({ "user": u }).to_string();
    let (method, path, body) = match &action {
        AdminAction::Reload => ("POST", "/reload", String::new()),
        AdminAction::Health => ("GET", "/healthz", String::new()),
        AdminAction::Metrics => ("GET", "/metrics", String::new()),
        AdminAction::Locked => ("GET", "/locked", String::new()),
        AdminAction::Unlock { users } => ("POST", "/unlock", serde_json::json!({ "users": users }).to_string()),
        AdminAction::RevokeTotp { user } => ("POST", "/revoke-totp", one(user)),
        AdminAction::SignOut { user } => ("POST", "/sign-out", one(user)),
        AdminAction::EnrollLink { user } => ("POST", "/enroll-link", one(user)),
        AdminAction::RotateKeys => ("POST", "/keys/rotate", String::new()),
        AdminAction::Store { action: StoreAction::Export } => ("GET", "/store/export", String::new()),
        AdminAction::Store { action: StoreAction::Import } => {
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut input).map_err(|e| e.to_string())?;
            ("POST", "/store/import", input)
        }
        AdminAction::Approver { action: AdminApproverAction::List { user } } => ("POST", "/approver/list", one(user)),
        AdminAction::Approver { action: AdminApproverAction::Link { user } } => ("POST", "/approver/link", one(user)),
        AdminAction::Approver { action: AdminApproverAction::Remove { user, device } } => {
            ("POST", "/approver/remove", serde_json::json!({ "user": user, "device": device }).to_string())
        }
        AdminAction::Invitations => ("GET", "/invitations", String::new()),
        AdminAction::Cert { .. }
        | AdminAction::Pass { .. }
        | AdminAction::Users { .. }
        | AdminAction::Audit { .. }
        | AdminAction::Invite { .. }
        | AdminAction::Mail { .. } => {
            unreachable!("handled above")
        }
    };
    if matches!(&action, AdminAction::Unlock { users } if users.is_empty()) {
        return Err("name at least one user to unlock".into());
    }
    let (status, body) = crate::admin::client::request(addr, method, path, &token, &body)?;
    print!("{body}");
    Ok(if (200..300).contains(&status) { 0 } else { 1 })
}

/// `admin mail test ADDRESS`: one message through the configured relay.
fn mail_test(c: &Config, address: &str) -> Result<i32, String> {
    let settings = c.mail.as_ref().ok_or("the config has no [mail] section: there is no relay to send with")?;
    let mailer = crate::mail::Mailer::new(settings);
    let msg = crate::mail::Message {
        to: address.to_string(),
        to_name: None,
        subject: "portcullis: test message".into(),
        text: format!(
            "This is a test message from portcullis, sent by `portcullis admin mail test` through {}.\n\
             If you can read it, portcullis can send mail.\n",
            mailer.server()
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    match runtime.block_on(mailer.send(&msg)) {
        Ok(()) => {
            println!("sent to {address} via {}", mailer.server());
            Ok(0)
        }
        Err(e) => {
            eprintln!("mail not sent: {}", e.reason());
            Ok(1)
        }
    }
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

/// The activation PIN of an invitation: typed twice without echo, or one line of stdin.
fn read_pin(prompt: bool, from_stdin: bool) -> Result<String, String> {
    let pin = if from_stdin || !prompt {
        if !from_stdin {
            return Err("give the activation PIN with --pin-prompt (typed twice) or --pin-stdin".into());
        }
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
        line.trim().to_string()
    } else {
        let p = rpassword::prompt_password("Activation PIN (4-8 digits): ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if p != again {
            return Err("the two PINs differ; nothing was sent".into());
        }
        p
    };
    crate::invitations::check_pin(&pin)?;
    Ok(pin)
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
