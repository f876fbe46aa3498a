//! Who calls the admin API, and the rules of who may act on whom.
//!
//! Two kinds of caller reach the same routes (`api::route`): the bearer token
//! of the admin listener (automation, the CLI), recorded as `token:<name>`,
//! and an administrator signed in through the portal (the console and its
//! JSON twin under `/.portcullis/api/admin/`), recorded by user name and role.
//! The rules, from the bank we learn from:
//! - masters and admins unlock locked users and revoke their tokens and sessions;
//! - nobody unlocks, revokes or signs out themselves, or changes their own
//!   certificates (a locked master is unlocked by another administrator);
//! - revoking an administrator's authenticator, sessions or certificates takes a
//!   master, so an admin cannot shut the masters out;
//! - a person confirms each of those acts with their password again.

use crate::config::users::Role;
use crate::config::Config;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The admin listener's bearer token, by its file's name.
    Token(String),
    /// An administrator signed in through the portal.
    Person { user: String, role: Role },
}

impl Actor {
    /// As the audit log records it: `token:admin`, or the user name.
    pub fn label(&self) -> String {
        match self {
            Actor::Token(name) => format!("token:{name}"),
            Actor::Person { user, .. } => user.clone(),
        }
    }

    /// `token`, `admin` or `master`.
    pub fn role(&self) -> &'static str {
        match self {
            Actor::Token(_) => "token",
            Actor::Person { role, .. } => role.name(),
        }
    }

    pub fn person(&self) -> Option<&str> {
        match self {
            Actor::Person { user, .. } => Some(user),
            Actor::Token(_) => None,
        }
    }
}

/// One admin API call: who makes it, and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub from: Option<IpAddr>,
}

impl Caller {
    pub fn token(name: &str, from: Option<IpAddr>) -> Caller {
        Caller { actor: Actor::Token(name.to_string()), from }
    }
}

/// The acts on a user that the rules govern; each asks a person to confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Unlock,
    RevokeTotp,
    SignOut,
    CertSetExpiring,
    CertExpire,
    CertRevoke,
}

impl Act {
    pub fn name(self) -> &'static str {
        match self {
            Act::Unlock => "unlock",
            Act::RevokeTotp => "revoke_totp",
            Act::SignOut => "sign_out_everywhere",
            Act::CertSetExpiring => "cert_set_expiring",
            Act::CertExpire => "cert_expire",
            Act::CertRevoke => "cert_revoke",
        }
    }

    /// The admin API route of an act that asks for a confirmation password.
    pub fn of_route(path: &str) -> Option<Act> {
        Some(match path {
            "/unlock" => Act::Unlock,
            "/revoke-totp" => Act::RevokeTotp,
            "/sign-out" => Act::SignOut,
            "/cert/set-expiring" => Act::CertSetExpiring,
            "/cert/expire" => Act::CertExpire,
            "/cert/revoke" => Act::CertRevoke,
            _ => return None,
        })
    }

    /// Acts that shut a user out (rather than let one back in).
    fn shuts_out(self) -> bool {
        self != Act::Unlock
    }
}

/// Why an act on a user was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The administrator named themselves.
    Yourself,
    /// An admin tried to shut out another administrator.
    MasterOnly,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Yourself => "yourself",
            Refusal::MasterOnly => "master_only",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::Yourself => "nobody acts on their own account: ask another administrator",
            Refusal::MasterOnly => {
                "only a master may revoke an administrator's authenticator, sessions or certificates"
            }
        }
    }
}

/// Whether `actor` may do `act` to `target` (a user of `cfg`; unknown users
/// are the caller's to report).
pub fn may(cfg: &Config, actor: &Actor, act: Act, target: &str) -> Result<(), Refusal> {
    let Actor::Person { user, role } = actor else { return Ok(()) };
    if user == target {
        return Err(Refusal::Yourself);
    }
    let target_administers = cfg.users.get(target).is_some_and(|u| u.role.administers());
    if act.shuts_out() && target_administers && *role != Role::Master {
        return Err(Refusal::MasterOnly);
    }
    Ok(())
}

/// Writes the audit line of one act on one user (its target, in the field
/// `user`: `target` is the log's own key for the event's kind), with the
/// certificate's `serial` when the act was on one.
pub fn record(caller: &Caller, act: &str, user: &str, serial: Option<&str>, result: &str) {
    crate::audit!(
        "admin_action",
        actor = %caller.actor.label(),
        role = caller.actor.role(),
        action = act,
        user = %user,
        serial,
        result = %result,
        from = caller.from.map(|ip| ip.to_string()),
    );
}

/// The administrators other than `user` (for "ask another administrator").
pub fn other_administrators<'c>(cfg: &'c Config, user: &str) -> Vec<&'c str> {
    let mut v: Vec<&str> =
        cfg.users.iter().filter(|u| u.role.administers() && u.username != user).map(|u| u.username.as_str()).collect();
    v.sort_unstable();
    v
}
