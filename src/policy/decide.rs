//! The decision: a pure function from (app, request facts, session) to what
//! the proxy does, naming the rule that decided. No I/O, no allocation.

use crate::config::{App, GroupId, PolicyGroup};
use crate::policy::expr::Facts;

/// How far a session's owner has proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Password (or device certificate) only.
    FirstFactor,
    /// A second factor was completed.
    BothFactors,
}

/// What the decision needs to know of a session (the cookie codec fills it in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFacts {
    pub group: GroupId,
    pub level: Level,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    Login,
    SecondFactor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Forward,
    Challenge(Challenge),
    Deny,
}

impl Action {
    /// The action's name in `portcullis decide`, the audit log and the access log.
    pub fn name(self) -> &'static str {
        match self {
            Action::Forward => "forward",
            Action::Deny => "deny",
            Action::Challenge(Challenge::Login) => "challenge_login",
            Action::Challenge(Challenge::SecondFactor) => "challenge_second_factor",
        }
    }
}

impl Level {
    /// The session's level as the logs name it.
    pub fn name(self) -> &'static str {
        match self {
            Level::FirstFactor => "first_factor",
            Level::BothFactors => "both_factors",
        }
    }
}

/// The rule that decided, named in the audit log and in `portcullis decide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The app's `bypass` condition held: no login needed.
    Bypass,
    /// No valid session.
    NoSession,
    /// The user's policy group is not among the app's `policy_groups`.
    GroupNotAdmitted,
    /// The group's `allow` condition is false here.
    AllowFalse,
    /// The session completed a second factor.
    SecondFactorDone,
    /// The group's `otp_skip` condition holds here.
    OtpSkip,
    /// `otp_skip` is false here and the session has no second factor.
    OtpRequired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub rule: Rule,
}

impl Decision {
    fn new(action: Action, rule: Rule) -> Self {
        Decision { action, rule }
    }

    /// The rule as an administrator reads it, e.g. `policy_group.staff.otp_skip`.
    pub fn rule_name(&self, app: &App, group: Option<&PolicyGroup>) -> String {
        let g = group.map_or("-", |g| g.name.as_str());
        match self.rule {
            Rule::Bypass => format!("app.{}.bypass", app.name),
            Rule::NoSession => format!("app.{}.bypass (false, no session)", app.name),
            Rule::GroupNotAdmitted => format!("app.{}.policy_groups (no `{g}`)", app.name),
            Rule::AllowFalse => format!("policy_group.{g}.allow (false)"),
            Rule::SecondFactorDone => format!("policy_group.{g}.allow (second factor done)"),
            Rule::OtpSkip => format!("policy_group.{g}.otp_skip"),
            Rule::OtpRequired => format!("policy_group.{g}.otp_skip (false)"),
        }
    }
}

/// Decides one request. `groups` is `Config::groups`.
pub fn decide(app: &App, groups: &[PolicyGroup], facts: &Facts, session: Option<&SessionFacts>) -> Decision {
    if app.bypass.eval(facts) {
        return Decision::new(Action::Forward, Rule::Bypass);
    }
    let Some(s) = session else {
        return Decision::new(Action::Challenge(Challenge::Login), Rule::NoSession);
    };
    let Some(group) = groups.get(s.group).filter(|_| app.admits(s.group)) else {
        return Decision::new(Action::Deny, Rule::GroupNotAdmitted);
    };
    if !group.allow.eval(facts) {
        return Decision::new(Action::Deny, Rule::AllowFalse);
    }
    if s.level == Level::BothFactors {
        return Decision::new(Action::Forward, Rule::SecondFactorDone);
    }
    // Re-checked on every request: a skip earned inside does not travel outside.
    if group.otp_skip.eval(facts) {
        return Decision::new(Action::Forward, Rule::OtpSkip);
    }
    Decision::new(Action::Challenge(Challenge::SecondFactor), Rule::OtpRequired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceCertMode, SecondFactor, Upstream};
    use crate::policy::expr::{Condition, GroupTable};
    use crate::policy::ip::{NetMask, NetworkTable, NetworkTableBuilder};
    use std::time::Duration;

    fn networks() -> NetworkTable {
        let mut b = NetworkTableBuilder::new();
        b.add("internal", &["10.0.0.0/8".parse().unwrap()]).unwrap();
        b.build()
    }

    fn group(name: &str, allow: &str, otp_skip: &str, n: &NetworkTable) -> PolicyGroup {
        PolicyGroup {
            name: name.into(),
            allow: Condition::compile(allow, n, &mut GroupTable::default()).unwrap(),
            otp_skip: Condition::compile(otp_skip, n, &mut GroupTable::default()).unwrap(),
            enroll_when: Condition::never(),
            second_factors: vec![SecondFactor::Totp],
            push_number_matching: true,
            session_lifetime: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(600),
        }
    }

    fn app(bypass: &str, n: &NetworkTable) -> App {
        App {
            name: "wiki".into(),
            display_name: "wiki".into(),
            hosts: vec!["wiki.localhost".into()],
            upstream: Upstream {
                addr: "127.0.0.1:1".parse().unwrap(),
                tls: false,
                sni: String::new(),
                written: String::new(),
            },
            policy_groups: vec![0, 1],
            bypass: Condition::compile(bypass, n, &mut GroupTable::default()).unwrap(),
            device_cert: DeviceCertMode::Off,
            hsts: false,
            counters: Default::default(),
        }
    }

    const INSIDE: Facts = facts(NetMask(1));
    const OUTSIDE: Facts = facts(NetMask(0));

    const fn facts(networks: NetMask) -> Facts {
        use crate::policy::{expr::GroupMask, time::LocalTime};
        let local = LocalTime { second_of_day: 0, weekday: 0, day: 0 };
        Facts {
            networks,
            entrance_pass: false,
            device_cert: false,
            invitation: false,
            now: 0,
            local,
            pass_issued_at: 0,
            groups: GroupMask::EMPTY,
        }
    }

    /// The decision table: every row is (bypass, group, level, facts) → (action, rule).
    #[test]
    fn decision_table() {
        let n = networks();
        let groups = vec![
            group("staff", "always", "internal_ip", &n),
            group("contractors", "internal_ip", "never", &n),
            group("outsiders", "always", "always", &n),
        ];
        let s = |group, level| Some(SessionFacts { group, level });
        let (first, both) = (Level::FirstFactor, Level::BothFactors);
        let login = Action::Challenge(Challenge::Login);
        let otp = Action::Challenge(Challenge::SecondFactor);
        let rows: Vec<(&str, Option<SessionFacts>, Facts, Action, Rule)> = vec![
            ("internal_ip", None, INSIDE, Action::Forward, Rule::Bypass),
            ("internal_ip", None, OUTSIDE, login, Rule::NoSession),
            ("never", None, INSIDE, login, Rule::NoSession),
            ("always", None, OUTSIDE, Action::Forward, Rule::Bypass),
            ("never", s(0, first), INSIDE, Action::Forward, Rule::OtpSkip),
            ("never", s(0, first), OUTSIDE, otp, Rule::OtpRequired),
            ("never", s(0, both), OUTSIDE, Action::Forward, Rule::SecondFactorDone),
            ("never", s(1, both), OUTSIDE, Action::Deny, Rule::AllowFalse),
            ("never", s(1, first), INSIDE, otp, Rule::OtpRequired),
            ("never", s(1, both), INSIDE, Action::Forward, Rule::SecondFactorDone),
            ("never", s(2, first), OUTSIDE, Action::Deny, Rule::GroupNotAdmitted),
            ("never", s(9, both), INSIDE, Action::Deny, Rule::GroupNotAdmitted),
        ];
        for (i, (bypass, session, facts, action, rule)) in rows.into_iter().enumerate() {
            let d = decide(&app(bypass, &n), &groups, &facts, session.as_ref());
            assert_eq!((d.action, d.rule), (action, rule), "row {i}");
        }
    }

    #[test]
    fn rule_names_say_which_condition() {
        let n = networks();
        let g = group("staff", "always", "internal_ip", &n);
        let d = Decision::new(Action::Forward, Rule::OtpSkip);
        assert_eq!(d.rule_name(&app("never", &n), Some(&g)), "policy_group.staff.otp_skip");
    }
}
