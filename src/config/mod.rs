//! Configuration: the TOML file (`file.rs`) is turned once, at load, into the
//! runtime form below (`compile.rs`), which the request path reads without
//! parsing, allocating or locking. A reload builds a whole new [`Config`] and
//! swaps it in atomically; a config that does not compile never replaces the
//! one that serves.

pub mod compile;
pub mod cooldown;
pub mod duration;
pub mod file;
pub mod hosts;
pub mod identity;
pub mod logs;
pub mod mail;
pub mod redis_url;
pub mod source;
pub mod users;

use crate::metrics::AppCounters;
use crate::policy::expr::{Condition, Facts, GroupMask, GroupTable};
use crate::policy::ip::{IpNet, NetworkTable};
use crate::policy::time::Zone;
use hosts::{AppId, HostTable};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use compile::load;
pub use source::{ConfigError, ConfigErrors};
pub use users::User;

/// The whole runtime configuration, immutable once built.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub server: Server,
    pub admin: Admin,
    pub networks: NetworkTable,
    /// `[policy]`: the time zone and the groups conditions name.
    pub policy: PolicySettings,
    pub groups: Vec<PolicyGroup>,
    pub apps: Vec<App>,
    pub hosts: HostTable,
    pub users: users::Users,
    pub portal: Portal,
    pub notices: Notices,
    pub totp: TotpSettings,
    pub lockout: LockoutSettings,
    pub limits: Limits,
    /// `[device_certificates]`; `None` when the section is absent (no device CA).
    pub device_certificates: Option<DeviceCertificates>,
    /// `[push]`: push approval settings (used by groups whose `second_factors` name `push`).
    pub push: PushSettings,
    /// `[entrance_pass]`; `None` when absent: passes are neither issued nor counted.
    pub entrance_pass: Option<EntrancePass>,
    /// `[log]`: format, level and the access log.
    pub log: logs::LogSettings,
    /// `[mail]`: the SMTP relay; `None` when absent (no mail is sent).
    pub mail: Option<mail::MailSettings>,
    /// `[identity]`: the signed identity (JWT) apps receive.
    pub identity: identity::IdentitySettings,
    /// Notes that do not stop the config from loading (shown by `check`).
    pub warnings: Vec<String>,
}

/// `[policy]`, and what the compiled conditions share.
#[derive(Debug, Default)]
pub struct PolicySettings {
    /// `time_zone` (default UTC): where `time(…)`, `weekday(…)` and `date(…)` are read.
    pub zone: Zone,
    /// The groups `group("…")` names, each a bit of a user's `group_mask`.
    pub user_groups: GroupTable,
}

impl Config {
    /// A request's facts at Unix time `now`: its local time in the policy's
    /// zone (the zone caches the offset of the current second).
    #[inline]
    pub fn facts_at(&self, facts: Facts, now: u64) -> Facts {
        facts.at(now, &self.policy.zone)
    }

    /// The bits of `user`'s groups that conditions name (none for an unknown user).
    pub fn group_mask(&self, user: &str) -> GroupMask {
        self.users.get(user).map_or(GroupMask::EMPTY, |u| u.group_mask)
    }
}

/// `[push]`.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// How long a push request waits for an answer (default 2 minutes).
    pub ttl: Duration,
    /// Push requests per user within `window` (default 3 per 5 minutes).
    pub max_outstanding: u32,
    pub window: Duration,
    /// After a "deny" or "this wasn't me", no push for this long (default 15 minutes).
    pub block_after_deny: Duration,
    /// Also POST each request (JSON) here, e.g. an ntfy topic or a chat hook.
    pub webhook: Option<String>,
    /// Hosts Web Push subscriptions may point at (`*.example.com` for subdomains).
    pub web_push_hosts: Vec<String>,
    /// The VAPID contact (`mailto:` or `https:`) push services may write to.
    pub contact: String,
}

/// `[entrance_pass]`: when a login earns the browser a pass, and for how long.
#[derive(Debug, Clone)]
pub struct EntrancePass {
    /// Evaluated at the end of a browser login (`never`: no new passes).
    pub issue_when: Condition,
    /// How long a pass works (default 180 days).
    pub lifetime: Duration,
    /// Each use (at most hourly) moves the end to `lifetime` from then.
    pub renew_on_use: bool,
}

/// `[device_certificates]`: the device CA, issuance and the license quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificates {
    /// Active certificates allowed by the license (at least 1).
    pub contracted: u32,
    /// How long an issued certificate is valid (default 397 days).
    pub validity: Duration,
    /// Where the CA certificate and key are.
    pub ca: DeviceCaSource,
    /// How long a `cert issue --link` download link stays usable (default 24 h).
    pub link_ttl: Duration,
    /// Certificate login: the listener behind the login page's "Log in with
    /// device certificate" button; `None` when `login_listen` is not set.
    pub login: Option<CertLogin>,
}

/// `[device_certificates] login_listen`, `login_host`, `app_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertLogin {
    /// The address the certificate-login listener binds.
    pub listen: SocketAddr,
    /// `host[:port]` browsers use to reach it; `None`: each app's own host,
    /// on `listen`'s port.
    pub host: Option<String>,
    /// The port browsers reach the apps on (the main HTTPS listener's port
    /// unless a port mapping in front changes it): the only port a
    /// certificate login is handed back to.
    pub app_port: u16,
}

impl CertLogin {
    /// The `host:port` the button sends a browser on `app_host` to.
    pub fn authority_for(&self, app_host: &str) -> String {
        match &self.host {
            Some(h) if h.contains(':') => h.clone(),
            Some(h) => format!("{h}:{}", self.listen.port()),
            None => format!("{app_host}:{}", self.listen.port()),
        }
    }
}

/// The device CA: made on first start in `state_dir`, or an existing one named
/// by `ca_cert` and `ca_key` (both or neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceCaSource {
    /// `state_dir/device-ca.crt` and `state_dir/device-ca.key`, created if missing.
    StateDir,
    /// An existing CA (e.g. shared by every instance of a cluster).
    Files { cert: PathBuf, key: PathBuf },
}

/// `[limits]`: what a request may carry before the proxy refuses it (414 for
/// the request line, 431 for headers). The defaults are nginx's and HAProxy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in the request line (method, target, version).
    pub request_line: usize,
    /// Bytes in one header line (name, `: `, value).
    pub header: usize,
    /// Bytes in all header lines together.
    pub headers_total: usize,
    /// Number of header lines.
    pub headers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { request_line: 8 * 1024, header: 8 * 1024, headers_total: 32 * 1024, headers: 100 }
    }
}

#[derive(Debug)]
pub struct Server {
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub tls: Arc<rustls::sign::CertifiedKey>,
    pub tls_cert_path: PathBuf,
    pub tls_key_path: PathBuf,
    pub trusted_proxies: TrustedProxies,
    pub state_dir: PathBuf,
    pub grace_period: Duration,
    pub threads: usize,
    /// One shared work-stealing runtime (true) or one runtime per thread (false).
    pub work_stealing: bool,
    pub store: StoreConfig,
}

/// Where state lives: the embedded store (one node) or Redis (several instances).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Embedded,
    Redis {
        url: String,
        /// An ACL user (`[redis] username`); overrides one in the URL.
        username: Option<String>,
        password_file: Option<PathBuf>,
        db: Option<i64>,
        key_prefix: String,
        /// `rediss://` only: the CA that issued the server's certificate,
        /// trusted instead of the system's roots.
        ca_file: Option<PathBuf>,
        /// `rediss://` only: a client certificate and its key (both or neither).
        client_cert: Option<PathBuf>,
        client_key: Option<PathBuf>,
        /// Durable writes wait (`WAIT`) until this many replicas have them.
        durable_replicas: u32,
    },
}

#[derive(Debug)]
pub struct Admin {
    pub listen: SocketAddr,
    pub token_file: PathBuf,
}

/// `[totp]`: the authenticator settings and the cooldown after a revocation.
#[derive(Debug, Clone)]
pub struct TotpSettings {
    pub period: u64,
    pub issuer: String,
    pub cooldown: cooldown::Cooldown,
    /// Seconds east of UTC, for showing times to users.
    pub utc_offset: i32,
}

/// `[lockout]`: when repeated failures lock a user, and the per-address brake.
#[derive(Debug, Clone)]
pub struct LockoutSettings {
    pub max_failures: u32,
    /// `None`: until an administrator unlocks.
    pub duration: Option<Duration>,
    pub per_address_max: u64,
    pub per_address_window: Duration,
    /// The brake counts an IPv4 client by this prefix (32: each address).
    pub per_address_prefix_v4: u8,
    /// The brake counts an IPv6 client by this prefix (64: one site or host,
    /// which usually holds a whole /64).
    pub per_address_prefix_v6: u8,
}

#[derive(Debug, Default)]
pub struct Portal {
    pub contact: Option<String>,
}

/// `[notices]`: the emails users get about their account (each on unless
/// turned off; none without `[mail]` or an `email` in the users file).
#[derive(Debug, Clone, Copy)]
pub struct Notices {
    pub token_revoked: bool,
    pub unlocked: bool,
    pub approver_added: bool,
    pub entrance_pass: bool,
    pub cert_expiring: bool,
}

/// The CIDRs whose X-Forwarded-For is believed.
#[derive(Debug, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl crate::identity::client_ip::TrustedProxies for TrustedProxies {
    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| crate::policy::ip::contains(c, ip))
    }
}

/// Index of a policy group in `Config::groups`.
pub type GroupId = usize;

/// Second factors a policy group may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecondFactor {
    Totp,
    Push,
}

/// A policy group, assigned to users: when they may come in, and when the
/// one-time password may be skipped.
#[derive(Debug)]
pub struct PolicyGroup {
    pub name: String,
    pub allow: Condition,
    pub otp_skip: Condition,
    /// When a user without an authenticator may enroll one by themselves.
    pub enroll_when: Condition,
    pub second_factors: Vec<SecondFactor>,
    /// A push approval asks the device for the number the browser shows (default on).
    pub push_number_matching: bool,
    pub session_lifetime: Duration,
    pub idle_timeout: Duration,
}

/// Whether the TLS listener asks this app's clients for a device certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceCertMode {
    Off,
    Request,
    Require,
}

#[derive(Debug)]
pub struct App {
    pub name: String,
    /// What the sign-in pages call the app: `display_name`, else `name`.
    pub display_name: String,
    pub hosts: Vec<String>,
    pub upstream: Upstream,
    pub policy_groups: Vec<GroupId>,
    pub bypass: Condition,
    pub device_cert: DeviceCertMode,
    /// Add `Strict-Transport-Security` to the app's own responses (when it set none).
    pub hsts: bool,
    pub counters: Arc<AppCounters>,
}

impl App {
    pub fn admits(&self, group: GroupId) -> bool {
        self.policy_groups.contains(&group)
    }
}

/// Where an app's requests go; the address is resolved at load time.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub tls: bool,
    pub sni: String,
    /// As written, for the Host header of TLS upstreams and for messages.
    pub written: String,
}

impl Config {
    pub fn app(&self, id: AppId) -> &App {
        &self.apps[id]
    }

    /// One line for `portcullis check` and the reload log.
    pub fn summary(&self) -> String {
        format!(
            "{}: ok: {} apps, {} policy groups, {} networks ({} prefixes), {} users",
            self.path.display(),
            self.apps.len(),
            self.groups.len(),
            self.networks.len(),
            self.networks.prefix_count(),
            self.users.len()
        )
    }
}
