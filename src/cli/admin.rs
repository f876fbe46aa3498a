//! `portcullis admin …`: the administrator's commands, each a call to the
//! running instance's admin API with the bearer token (but `mail test`, which
//! sends from this process), and the invitation PIN prompt.

use super::load;
use crate::config::Config;
use clap::Subcommand;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Subcommand)]
pub(super) enum AdminAction {
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
pub(super) enum MailAction {
    /// Send a test message with the config's `[mail]` settings (from this
    /// process, not through the running instance); exits 1 when it was not sent.
    Test { address: String },
}

#[derive(Subcommand)]
pub(super) enum AdminApproverAction {
    /// A user's approver devices.
    List { user: String },
    /// A single-use link (10 minutes) with which the user adds an approver device.
    Link { user: String },
    /// Remove one of a user's approver devices.
    Remove {
        user: String,
        /// The device id from `list` (it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        device: String,
    },
}

#[derive(Subcommand)]
pub(super) enum PassAction {
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
pub(super) enum CertAction {
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
pub(super) enum StoreAction {
    /// Print every durable record as JSON lines.
    Export,
    /// Read JSON lines from stdin into the running instance's store.
    Import,
}

pub(super) fn run(config_path: &std::path::Path, action: AdminAction) -> Result<i32, String> {
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
