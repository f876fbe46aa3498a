//! What the TOML says: serde types that mirror the config file one to one.
//!
//! Nothing here is checked beyond what serde does (types, unknown keys); values
//! that can be wrong keep their [`Spanned`] position so that `compile.rs`, the
//! one place that checks, can name the file, line and column.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub server: ServerFile,
    #[serde(default)]
    pub admin: AdminFile,
    #[serde(default)]
    pub networks: BTreeMap<String, Spanned<Vec<Text>>>,
    pub users: UsersRef,
    #[serde(default)]
    pub portal: PortalFile,
    #[serde(default)]
    pub notices: NoticesFile,
    #[serde(default)]
    pub redis: RedisFile,
    #[serde(default)]
    pub totp: TotpFile,
    #[serde(default)]
    pub lockout: LockoutFile,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub policy: PolicyFile,
    #[serde(default)]
    pub policy_group: BTreeMap<String, Spanned<PolicyGroupFile>>,
    #[serde(default)]
    pub app: Vec<Spanned<AppFile>>,
    pub device_certificates: Option<Spanned<DeviceCertificatesFile>>,
    pub entrance_pass: Option<EntrancePassFile>,
    #[serde(default)]
    pub push: PushFile,
    #[serde(default)]
    pub log: LogFile,
    pub mail: Option<MailFile>,
    #[serde(default)]
    pub identity: IdentityFile,
}

/// `[identity]`: what apps are told about the user beyond the plain headers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityFile {
    /// The signed identity (an ES256 JWT) on every forwarded request (default on).
    pub jwt: Option<bool>,
    pub jwt_header: Option<Text>,
    pub jwt_lifetime: Option<Text>,
    pub jwt_issuer: Option<Text>,
}

/// `[mail]`: the SMTP relay outgoing mail goes through.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailFile {
    pub host: Text,
    pub port: Option<Spanned<i64>>,
    pub security: Option<Text>,
    pub username: Option<Text>,
    pub password_file: Option<Text>,
    pub from_address: Text,
    pub from_name: Option<Text>,
    pub ca_file: Option<Text>,
    pub timeout: Option<Text>,
    pub link_base: Option<Text>,
    pub invitation_ttl: Option<Text>,
}

/// `[log]`: how portcullis writes its log.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    pub format: Option<Text>,
    pub level: Option<Text>,
    pub access: Option<bool>,
    pub audit_file: Option<Text>,
    pub audit_max_size: Option<Text>,
    pub audit_keep: Option<Spanned<i64>>,
}

/// `[push]`: push approval of logins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushFile {
    pub ttl: Option<Text>,
    pub max_outstanding: Option<Spanned<i64>>,
    pub window: Option<Text>,
    pub block_after_deny: Option<Text>,
    pub webhook: Option<Text>,
    pub web_push_hosts: Option<Vec<Text>>,
    pub contact: Option<Text>,
}

/// `[entrance_pass]`: long-lived passes for browsers that logged in under a condition.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntrancePassFile {
    pub issue_when: Option<Text>,
    pub lifetime: Option<Text>,
    pub renew_on_use: Option<bool>,
}

/// `[device_certificates]`: the device CA, issuance and the license quota.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCertificatesFile {
    pub contracted: Option<Spanned<i64>>,
    pub validity: Option<Text>,
    pub ca_cert: Option<Text>,
    pub ca_key: Option<Text>,
    pub link_ttl: Option<Text>,
    pub login_listen: Option<Text>,
    pub login_host: Option<Text>,
    pub app_port: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub https: Text,
    pub http: Option<Text>,
    pub tls_cert: Text,
    pub tls_key: Text,
    #[serde(default)]
    pub trusted_proxies: Vec<Text>,
    pub state_dir: Option<Text>,
    pub grace_period: Option<Text>,
    pub threads: Option<Spanned<i64>>,
    pub store: Option<Text>,
    pub work_stealing: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisFile {
    pub username: Option<Text>,
    pub password_file: Option<Text>,
    pub ca_file: Option<Text>,
    pub client_cert: Option<Text>,
    pub client_key: Option<Text>,
    pub db: Option<Spanned<i64>>,
    pub key_prefix: Option<Text>,
    pub durable_replicas: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: Option<Text>,
    pub token_file: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersRef {
    pub file: Text,
}

/// `[notices]`: which emails users get about their account (with `[mail]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticesFile {
    pub token_revoked: Option<bool>,
    pub unlocked: Option<bool>,
    pub approver_added: Option<bool>,
    pub entrance_pass: Option<bool>,
    pub cert_expiring: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalFile {
    pub contact: Option<Text>,
}

/// `[policy]`: what all the conditions share.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// The IANA zone `time(…)`, `weekday(…)` and `date(…)` are read in.
    pub time_zone: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpFile {
    pub period: Option<Spanned<i64>>,
    pub issuer: Option<Text>,
    pub cooldown: Option<Text>,
    pub quiet_window: Option<Text>,
    pub timezone: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockoutFile {
    pub max_failures: Option<Spanned<i64>>,
    pub lockout: Option<Text>,
    pub per_address_max: Option<Spanned<i64>>,
    pub per_address_window: Option<Text>,
    pub per_address_prefix_v4: Option<Spanned<i64>>,
    pub per_address_prefix_v6: Option<Spanned<i64>>,
}

/// `[limits]`: request sizes, in bytes and headers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub request_line: Option<Spanned<i64>>,
    pub header: Option<Spanned<i64>>,
    pub headers_total: Option<Spanned<i64>>,
    pub headers: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyGroupFile {
    pub allow: Option<Text>,
    pub otp_skip: Option<Text>,
    pub enroll_when: Option<Text>,
    pub second_factors: Option<Vec<Text>>,
    pub push_number_matching: Option<bool>,
    pub session_lifetime: Option<Text>,
    pub idle_timeout: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppFile {
    pub name: Text,
    /// What the sign-in pages call the app ("Team wiki"); `name` when absent.
    pub display_name: Option<String>,
    pub hosts: Vec<Text>,
    pub upstream: Text,
    #[serde(default)]
    pub upstream_tls: bool,
    pub upstream_sni: Option<Text>,
    #[serde(default)]
    pub policy_groups: Vec<Text>,
    pub bypass: Option<Text>,
    pub device_cert: Option<Text>,
    #[serde(default)]
    pub hsts: bool,
}

/// The users file: `[[user]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    #[serde(default)]
    pub user: Vec<Spanned<UserFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    pub username: Text,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub password: Text,
    pub policy_group: Text,
    #[serde(default)]
    pub groups: Vec<String>,
    /// `master`, `admin` or `user` (the default).
    pub role: Option<Text>,
    /// `en` or `ja`: the language of the mails the user receives.
    pub lang: Option<Text>,
}
