//! The one place that checks: turns the file types into the runtime [`Config`],
//! collecting every error with its file, line and column.

use super::file::{
    AppFile, ConfigFile, DeviceCertificatesFile, EntrancePassFile, PolicyGroupFile, PushFile, RedisFile, ServerFile,
    Text,
};
use super::hosts::{HostError, HostTable};
use super::source::{ConfigError, ConfigErrors, Source};
use super::*;
use crate::metrics;
use crate::policy::expr::{Condition, GroupTable};
use crate::policy::ip::{parse_network, IpNet, NetworkTableBuilder};
use crate::policy::time::Zone;
use std::net::ToSocketAddrs;
use std::path::Path;

const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Reads, parses and compiles a config file and the users file it names.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let src = Source::read(path)?;
    let file: ConfigFile = src.parse()?;
    let mut c = Compiler { src: &src, errors: Vec::new(), warnings: Vec::new(), user_groups: GroupTable::default() };
    let config = c.compile(file);
    match config {
        Some(config) if c.errors.is_empty() => Ok(config),
        _ => Err(ConfigErrors(c.errors)),
    }
}

struct Compiler<'a> {
    src: &'a Source,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    /// The groups the conditions name so far (`group("…")`).
    user_groups: GroupTable,
}

impl Compiler<'_> {
    fn compile(&mut self, file: ConfigFile) -> Option<Config> {
        let networks = self.networks(&file);
        let groups: Vec<PolicyGroup> =
            file.policy_group.iter().filter_map(|(name, g)| self.group(name, g.get_ref(), &networks)).collect();
        let server = self.server(&file.server, &file.redis);
        let admin = self.admin(&file, server.as_ref());
        let (apps, hosts) = self.apps(&file.app, &groups, &networks, file.device_certificates.is_some());
        let zone = self.zone(&file);
        let mut users = self.users(&file.users.file, &groups);
        if let Some(server) = &server {
            self.check_trust(server, &groups, &apps);
        }
        let portal = Portal { contact: file.portal.contact.as_ref().map(|c| c.get_ref().clone()) };
        let n = &file.notices;
        let notices = Notices {
            token_revoked: n.token_revoked.unwrap_or(true),
            unlocked: n.unlocked.unwrap_or(true),
            approver_added: n.approver_added.unwrap_or(true),
            entrance_pass: n.entrance_pass.unwrap_or(true),
            cert_expiring: n.cert_expiring.unwrap_or(true),
        };
        let totp = self.totp(&file);
        let lockout = self.lockout(&file);
        let limits = self.limits(&file.limits);
        let entrance_pass = file.entrance_pass.as_ref().map(|e| self.entrance_pass(e, &networks));
        let push = self.push(&file.push);
        let https = server.as_ref().map(|s| s.https);
        let device_certificates = file.device_certificates.as_ref().map(|d| self.device_certificates(d, https));
        let log = logs::compile(&file.log).unwrap_or_else(|(at, message)| {
            self.err_at(at, message);
            logs::LogSettings::default()
        });
        let identity = identity::compile(&file.identity).unwrap_or_else(|(at, message)| {
            self.err_at(at, message);
            identity::IdentitySettings::default()
        });
        let mail = file.mail.as_ref().and_then(|m| {
            mail::compile(m)
                .map_err(|errors| errors.into_iter().for_each(|(at, message)| self.err_at(at, message)))
                .ok()
        });
        // Every condition is compiled by now: the group table is complete.
        let user_groups = std::mem::take(&mut self.user_groups);
        if let Some(users) = users.as_mut() {
            users.set_group_masks(&user_groups);
            self.warn_unheld_groups(users, &user_groups);
        }
        Some(Config {
            path: self.src.path.clone(),
            server: server?,
            admin: admin?,
            networks,
            policy: PolicySettings { zone, user_groups },
            groups,
            apps,
            hosts,
            users: users?,
            portal,
            notices,
            totp,
            lockout,
            limits,
            device_certificates,
            entrance_pass,
            push,
            log,
            mail,
            identity,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    fn err(&mut self, at: &Text, message: impl Into<String>) {
        self.errors.push(self.src.error_at(at.span().start, message));
    }

    fn err_at(&mut self, offset: usize, message: impl Into<String>) {
        self.errors.push(self.src.error_at(offset, message));
    }

    fn addr(&mut self, t: &Text, what: &str) -> Option<SocketAddr> {
        match t.get_ref().parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(t, format!("{what}: `{}` is not an address:port such as `127.0.0.1:8443`", t.get_ref()));
                None
            }
        }
    }

    fn duration(&mut self, t: Option<&Text>, default: Duration) -> Duration {
        let Some(t) = t else { return default };
        duration::parse(t.get_ref()).unwrap_or_else(|e| {
            self.err(t, e);
            default
        })
    }

    fn store(&mut self, s: &ServerFile, r: &RedisFile) -> StoreConfig {
        let Some(t) = &s.store else { return StoreConfig::Embedded };
        let url = t.get_ref().trim();
        if url == "embedded" {
            return StoreConfig::Embedded;
        }
        let cluster = redis_url::is_cluster(url);
        if url.starts_with(redis_url::SCHEME) {
            if let Err(e) = redis_url::parse(url) {
                self.err(t, format!("server.store `{url}`: {e} (`redis+sentinel://host:port,host:port/service`)"));
                return StoreConfig::Embedded;
            }
        } else if cluster {
            if let Err(e) = redis_url::parse_cluster(url) {
                self.err(t, format!("server.store `{url}`: {e} (`redis+cluster://host:port,host:port`)"));
                return StoreConfig::Embedded;
            }
        } else if !(url.starts_with("redis://") || url.starts_with("rediss://")) || url.len() < 10 {
            self.err(
                t,
                format!(
                    "server.store `{url}` must be `embedded`, `redis://host:port[/db]`, `rediss://host:port[/db]`, `redis+sentinel://host:port,…/service` or `redis+cluster://host:port,…`"
                ),
            );
            return StoreConfig::Embedded;
        }
        let db = r.db.as_ref().map(|d| *d.get_ref());
        if let Some(d) = r.db.as_ref().filter(|d| !(0..=1023).contains(d.get_ref())) {
            self.err_at(d.span().start, "redis.db must be between 0 and 1023");
        }
        if let Some(d) = r.db.as_ref().filter(|d| cluster && *d.get_ref() != 0) {
            self.err_at(d.span().start, "redis.db: a Redis Cluster has only database 0");
        }
        let durable_replicas = match &r.durable_replicas {
            Some(n) if !(0..=16).contains(n.get_ref()) => {
                self.err_at(n.span().start, "redis.durable_replicas must be between 0 and 16");
                0
            }
            Some(n) => *n.get_ref() as u32,
            None => 0,
        };
        let key_prefix = r.key_prefix.as_ref().map_or_else(|| "portcullis:".to_string(), |p| p.get_ref().clone());
        if let Some(t) = r.key_prefix.as_ref().filter(|_| key_prefix.contains(['{', '}'])) {
            self.err(t, "redis.key_prefix may not contain `{` or `}` (portcullis places its own hash tags)");
        }
        let tls = url.starts_with("rediss://") || url.starts_with(redis_url::CLUSTER_TLS_SCHEME);
        let ca_file = r.ca_file.as_ref().map(|t| self.redis_tls_file(t, "ca_file", tls));
        if let Some(t) = &r.ca_file {
            if let Err(e) = crate::tls::read_cert_chain(Path::new(t.get_ref())) {
                self.err(t, format!("redis.ca_file: {e}"));
            }
        }
        let (client_cert, client_key) = self.redis_client_cert(r, tls);
        let username = r.username.as_ref().map(|u| u.get_ref().trim().to_string());
        if let Some(t) = r.username.as_ref() {
            let u = t.get_ref().trim();
            if u.is_empty() || u.len() > 128 || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
                self.err(t, "redis.username must be 1 to 128 characters, without spaces or control characters");
            }
        }
        StoreConfig::Redis {
            url: url.to_string(),
            username,
            password_file: r.password_file.as_ref().map(|p| p.get_ref().into()),
            db,
            key_prefix,
            ca_file,
            client_cert,
            client_key,
            durable_replicas,
        }
    }

    /// A `[redis]` TLS file: only with `rediss://`.
    fn redis_tls_file(&mut self, t: &Text, key: &str, tls: bool) -> PathBuf {
        if !tls {
            self.err(t, format!("redis.{key} needs a `rediss://` URL in server.store (TLS)"));
        }
        PathBuf::from(t.get_ref())
    }

    /// `redis.client_cert` and `redis.client_key`: both or neither, and the key
    /// must belong to the certificate.
    fn redis_client_cert(&mut self, r: &RedisFile, tls: bool) -> (Option<PathBuf>, Option<PathBuf>) {
        match (&r.client_cert, &r.client_key) {
            (None, None) => (None, None),
            (Some(t), None) => {
                self.err(t, "redis.client_cert needs redis.client_key (both or neither)");
                (None, None)
            }
            (None, Some(t)) => {
                self.err(t, "redis.client_key needs redis.client_cert (both or neither)");
                (None, None)
            }
            (Some(cert), Some(key)) => {
                self.cert_and_key(cert, key, ["redis.client_cert", "redis.client_key"]);
                (Some(self.redis_tls_file(cert, "client_cert", tls)), Some(PathBuf::from(key.get_ref())))
            }
        }
    }

    fn server(&mut self, s: &ServerFile, r: &RedisFile) -> Option<Server> {
        let store = self.store(s, r);
        let https = self.addr(&s.https, "server.https");
        let http = s.http.as_ref().and_then(|t| self.addr(t, "server.http"));
        let tls = self.tls(&s.tls_cert, &s.tls_key);
        let trusted_proxies =
            TrustedProxies(s.trusted_proxies.iter().filter_map(|t| self.cidr(t, "server.trusted_proxies")).collect());
        let threads = match &s.threads {
            Some(t) if !(1..=256).contains(t.get_ref()) => {
                self.err_at(t.span().start, "server.threads must be between 1 and 256");
                1
            }
            Some(t) => *t.get_ref() as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Some(Server {
            https: https?,
            http,
            tls: tls?,
            tls_cert_path: s.tls_cert.get_ref().into(),
            tls_key_path: s.tls_key.get_ref().into(),
            trusted_proxies,
            state_dir: s.state_dir.as_ref().map_or_else(|| "state".into(), |t| t.get_ref().into()),
            grace_period: self.duration(s.grace_period.as_ref(), DEFAULT_GRACE),
            threads,
            work_stealing: s.work_stealing.unwrap_or(true),
            store,
        })
    }

    fn tls(&mut self, cert: &Text, key: &Text) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.cert_and_key(cert, key, ["server.tls_cert", "server.tls_key"])
    }

    /// A certificate chain and the key that belongs to it; `names` are their config keys.
    fn cert_and_key(&mut self, cert: &Text, key: &Text, names: [&str; 2]) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let [cert_name, key_name] = names;
        let chain = match crate::tls::read_cert_chain(Path::new(cert.get_ref())) {
            Ok(c) => Some(c),
            Err(e) => {
                self.err(cert, format!("{cert_name}: {e}"));
                None
            }
        };
        let signing_key = match crate::tls::read_signing_key(Path::new(key.get_ref())) {
            Ok(k) => Some(k),
            Err(e) => {
                self.err(key, format!("{key_name}: {e}"));
                None
            }
        };
        let ck = rustls::sign::CertifiedKey::new(chain?, signing_key?);
        if let Err(e) = ck.keys_match() {
            self.err(key, format!("{key_name} does not belong to the certificate in {cert_name} ({e})"));
            return None;
        }
        Some(Arc::new(ck))
    }

    /// `[limits]`, each at least what real browsers send and at most Pingora's
    /// own header buffer (1 MiB).
    fn limits(&mut self, l: &super::file::LimitsFile) -> super::Limits {
        let d = super::Limits::default();
        let mut bytes = |v, what, default: usize| self.int(v, what, 1024..=1024 * 1024, default as i64) as usize;
        super::Limits {
            request_line: bytes(l.request_line.as_ref(), "limits.request_line", d.request_line),
            header: bytes(l.header.as_ref(), "limits.header", d.header),
            headers_total: bytes(l.headers_total.as_ref(), "limits.headers_total", d.headers_total),
            headers: self.int(l.headers.as_ref(), "limits.headers", 16..=250, d.headers as i64) as usize,
        }
    }

    fn int(
        &mut self,
        v: Option<&toml::Spanned<i64>>,
        what: &str,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
    ) -> i64 {
        match v {
            Some(n) if !range.contains(n.get_ref()) => {
                self.err_at(n.span().start, format!("{what} must be between {} and {}", range.start(), range.end()));
                default
            }
            Some(n) => *n.get_ref(),
            None => default,
        }
    }

    fn totp(&mut self, file: &ConfigFile) -> TotpSettings {
        let t = &file.totp;
        let period = self.int(t.period.as_ref(), "totp.period", 30..=60, 30) as u64;
        if period != 30 && period != 60 {
            self.err_at(t.period.as_ref().map_or(0, |p| p.span().start), "totp.period must be 30 or 60");
        }
        let offset = match &t.timezone {
            Some(tz) => super::cooldown::parse_offset(tz.get_ref()).unwrap_or_else(|e| {
                self.err(tz, format!("totp.timezone: {e}"));
                0
            }),
            None => 0,
        };
        let quiet = t.quiet_window.as_ref().and_then(|w| {
            let tz = t.timezone.as_ref().map_or("UTC", |z| z.get_ref().as_str());
            super::cooldown::QuietWindow::parse(w.get_ref(), tz)
                .map_err(|e| self.err(w, format!("totp.quiet_window: {e}")))
                .ok()
        });
        let secs = self.duration(t.cooldown.as_ref(), Duration::from_secs(20 * 60)).as_secs();
        if let Some(i) = t.issuer.as_ref().filter(|i| i.get_ref().contains(':')) {
            self.err(i, "totp.issuer must not contain ':' (authenticator apps split the account label there)");
        }
        TotpSettings {
            period,
            issuer: t.issuer.as_ref().map_or_else(|| "portcullis".to_string(), |i| i.get_ref().clone()),
            cooldown: super::cooldown::Cooldown { secs, quiet },
            utc_offset: offset,
        }
    }

    /// `[lockout]`. Nothing here can switch the lockout or the brake off:
    /// zero counts and zero durations are errors, not "no limit".
    fn lockout(&mut self, file: &ConfigFile) -> LockoutSettings {
        let l = &file.lockout;
        let duration = match &l.lockout {
            None => None,
            Some(t) if t.get_ref() == "until_unlocked" => None,
            Some(t) => Some(self.positive_duration(t, "lockout.lockout must be `until_unlocked` or a duration")),
        };
        let window = match &l.per_address_window {
            None => Duration::from_secs(600),
            Some(t) => self.positive_duration(t, "lockout.per_address_window"),
        };
        LockoutSettings {
            max_failures: self.int(l.max_failures.as_ref(), "lockout.max_failures", 1..=100, 5) as u32,
            duration,
            per_address_max: self.int(l.per_address_max.as_ref(), "lockout.per_address_max", 1..=100_000, 30) as u64,
            per_address_window: window,
            per_address_prefix_v4: self.int(
                l.per_address_prefix_v4.as_ref(),
                "lockout.per_address_prefix_v4",
                8..=32,
                32,
            ) as u8,
            per_address_prefix_v6: self.int(
                l.per_address_prefix_v6.as_ref(),
                "lockout.per_address_prefix_v6",
                16..=128,
                64,
            ) as u8,
        }
    }

    /// `[device_certificates]`. `contracted` has no default: the license is
    /// the administrator's to state. A configured CA is read here, so a wrong
    /// file is named with its line in the config rather than at first issuance.
    fn device_certificates(
        &mut self,
        d: &toml::Spanned<DeviceCertificatesFile>,
        https: Option<SocketAddr>,
    ) -> DeviceCertificates {
        let f = d.get_ref();
        let contracted = match &f.contracted {
            Some(_) => self.int(f.contracted.as_ref(), "device_certificates.contracted", 1..=1_000_000, 1) as u32,
            None => {
                self.err_at(d.span().start, "device_certificates.contracted is required: the number of device certificates your license allows (at least 1)");
                1
            }
        };
        let validity = self.bounded_duration(
            f.validity.as_ref(),
            "device_certificates.validity",
            Duration::from_secs(86_400)..=Duration::from_secs(3650 * 86_400),
            Duration::from_secs(397 * 86_400),
        );
        let link_ttl = self.bounded_duration(
            f.link_ttl.as_ref(),
            "device_certificates.link_ttl",
            Duration::from_secs(60)..=Duration::from_secs(30 * 86_400),
            Duration::from_secs(24 * 3600),
        );
        let ca = match (&f.ca_cert, &f.ca_key) {
            (None, None) => DeviceCaSource::StateDir,
            (Some(cert), Some(key)) => {
                if let Err(e) = crate::devices::ca::DeviceCa::load(Path::new(cert.get_ref()), Path::new(key.get_ref()))
                {
                    self.err(cert, format!("device_certificates.ca_cert / ca_key: {e}"));
                }
                DeviceCaSource::Files { cert: cert.get_ref().into(), key: key.get_ref().into() }
            }
            (Some(t), None) | (None, Some(t)) => {
                self.err(t, "device_certificates: give both ca_cert and ca_key (an existing CA), or neither (a CA made in state_dir)");
                DeviceCaSource::StateDir
            }
        };
        let login = self.cert_login(f, https);
        DeviceCertificates { contracted, validity, ca, link_ttl, login }
    }

    /// `[push]`, every key with a default.
    fn push(&mut self, p: &PushFile) -> PushSettings {
        let secs = Duration::from_secs;
        let ttl = self.bounded_duration(p.ttl.as_ref(), "push.ttl", secs(15)..=secs(600), secs(120));
        let max_outstanding = self.int(p.max_outstanding.as_ref(), "push.max_outstanding", 1..=100, 3) as u32;
        let window = self.bounded_duration(p.window.as_ref(), "push.window", secs(60)..=secs(86_400), secs(300));
        let block_after_deny = self.bounded_duration(
            p.block_after_deny.as_ref(),
            "push.block_after_deny",
            secs(0)..=secs(86_400),
            secs(900),
        );
        let webhook = p.webhook.as_ref().and_then(|t| {
            let v = t.get_ref().trim();
            if v.starts_with("https://") || v.starts_with("http://") {
                Some(v.to_string())
            } else {
                self.err(t, "push.webhook: give an http:// or https:// URL");
                None
            }
        });
        let web_push_hosts = match &p.web_push_hosts {
            Some(list) => list.iter().map(|t| t.get_ref().trim().to_ascii_lowercase()).collect(),
            None => crate::push::webpush::DEFAULT_PUSH_HOSTS.iter().map(|h| h.to_string()).collect(),
        };
        let contact = match &p.contact {
            Some(t) if t.get_ref().starts_with("mailto:") || t.get_ref().starts_with("https://") => t.get_ref().clone(),
            Some(t) => {
                self.err(t, "push.contact: give a mailto: or https: address push services may write to");
                String::new()
            }
            None => "mailto:admin@localhost".to_string(),
        };
        PushSettings { ttl, max_outstanding, window, block_after_deny, webhook, web_push_hosts, contact }
    }

    /// `[entrance_pass]`: `issue_when` defaults to `never` (the section alone
    /// issues nothing), the lifetime to 180 days.
    fn entrance_pass(&mut self, e: &EntrancePassFile, networks: &NetworkTable) -> EntrancePass {
        let issue_when =
            self.condition(e.issue_when.as_ref(), Condition::never(), "entrance_pass.issue_when", networks);
        let lifetime = self.bounded_duration(
            e.lifetime.as_ref(),
            "entrance_pass.lifetime",
            Duration::from_secs(3600)..=Duration::from_secs(3650 * 86_400),
            Duration::from_secs(180 * 86_400),
        );
        EntrancePass { issue_when, lifetime, renew_on_use: e.renew_on_use.unwrap_or(false) }
    }

    /// `login_listen` turns certificate login on; `login_host` and `app_port`
    /// only make sense with it.
    fn cert_login(&mut self, f: &DeviceCertificatesFile, https: Option<SocketAddr>) -> Option<CertLogin> {
        let Some(listen_text) = &f.login_listen else {
            if let Some(t) = &f.login_host {
                self.err(
                    t,
                    "device_certificates.login_host needs login_listen (the certificate-login listener's address)",
                );
            }
            if let Some(p) = &f.app_port {
                self.err_at(p.span().start, "device_certificates.app_port needs login_listen");
            }
            return None;
        };
        let listen = self.addr(listen_text, "device_certificates.login_listen")?;
        if https.is_some_and(|h| h.port() == listen.port()) {
            self.err(listen_text, "device_certificates.login_listen needs a port of its own (not server.https's): it asks every browser for a certificate");
            return None;
        }
        let host = f.login_host.as_ref().and_then(|t| {
            let v = t.get_ref().trim().to_ascii_lowercase();
            let (name, port) = match v.rsplit_once(':') {
                Some((n, p)) => (n.to_string(), Some(p)),
                None => (v.clone(), None),
            };
            let name_ok = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
            if name_ok && port_ok {
                Some(v)
            } else {
                self.err(t, "device_certificates.login_host: give a host name, optionally with :port (e.g. \"login.example.com\")");
                None
            }
        });
        let default_port = https.map_or(443, |h| h.port());
        let app_port = match &f.app_port {
            Some(_) => self.int(f.app_port.as_ref(), "device_certificates.app_port", 1..=65_535, 443) as u16,
            None => default_port,
        };
        Some(CertLogin { listen, host, app_port })
    }

    /// A duration within `range` (inclusive), or `default` when not given.
    fn bounded_duration(
        &mut self,
        t: Option<&Text>,
        what: &str,
        range: std::ops::RangeInclusive<Duration>,
        default: Duration,
    ) -> Duration {
        let Some(t) = t else { return default };
        match duration::parse(t.get_ref()) {
            Ok(d) if range.contains(&d) => d,
            Ok(_) => {
                let (lo, hi) = (range.start().as_secs(), range.end().as_secs());
                self.err(t, format!("{what}: `{}` must be between {lo}s and {hi}s", t.get_ref()));
                default
            }
            Err(e) => {
                self.err(t, format!("{what}: {e}"));
                default
            }
        }
    }

    /// A duration of at least one second; `0s` would switch a limit off.
    fn positive_duration(&mut self, t: &Text, what: &str) -> Duration {
        match duration::parse(t.get_ref()) {
            Ok(d) if d.is_zero() => {
                self.err(t, format!("{what}: must be longer than zero (`{}` would switch it off)", t.get_ref()));
                Duration::from_secs(1)
            }
            Ok(d) => d,
            Err(e) => {
                self.err(t, format!("{what}: {e}"));
                Duration::from_secs(1)
            }
        }
    }

    fn admin(&mut self, file: &ConfigFile, server: Option<&Server>) -> Option<Admin> {
        let listen = match &file.admin.listen {
            Some(t) => self.addr(t, "admin.listen")?,
            None => SocketAddr::from(([127, 0, 0, 1], 9091)),
        };
        if !listen.ip().is_loopback() {
            self.warnings.push(format!(
                "admin.listen {listen} is not a loopback address: the admin API is reachable from the network"
            ));
        }
        let token_file = match &file.admin.token_file {
            Some(t) => t.get_ref().into(),
            None => server.map_or_else(|| "state".into(), |s| s.state_dir.clone()).join("admin.token"),
        };
        Some(Admin { listen, token_file })
    }

    /// One network prefix of the list at `key`; an error names the key and the text.
    fn cidr(&mut self, t: &Text, key: &str) -> Option<IpNet> {
        match parse_network(t.get_ref()) {
            Ok(c) => Some(c),
            Err(e) => {
                self.err(t, format!("{key}: {e}"));
                None
            }
        }
    }

    fn networks(&mut self, file: &ConfigFile) -> NetworkTable {
        let mut b = NetworkTableBuilder::new();
        for (name, list) in &file.networks {
            let key = format!("networks.{name}");
            let cidrs: Vec<IpNet> = list.get_ref().iter().filter_map(|t| self.cidr(t, &key)).collect();
            if let Err(e) = b.add(name, &cidrs) {
                self.err_at(list.span().start, format!("networks.{name}: {e}"));
            }
        }
        b.build()
    }

    /// `[policy] time_zone`: an IANA name, UTC when absent.
    fn zone(&mut self, file: &ConfigFile) -> Zone {
        let Some(t) = &file.policy.time_zone else { return Zone::default() };
        Zone::named(t.get_ref()).unwrap_or_else(|e| {
            self.err(t, format!("policy.time_zone: {e}"));
            Zone::default()
        })
    }

    /// A group a condition names that no user is in: the condition is false
    /// for everyone there (a typo, most likely).
    fn warn_unheld_groups(&mut self, users: &Users, table: &GroupTable) {
        for (bit, name) in table.names().enumerate() {
            if !users.iter().any(|u| (u.group_mask.0 >> bit) & 1 == 1) {
                self.warnings
                    .push(format!("group(\"{name}\") is in a condition, but no user in the users file has that group"));
            }
        }
    }

    /// Compiles an expression and maps its error position into the file.
    fn condition(&mut self, t: Option<&Text>, default: Condition, what: &str, networks: &NetworkTable) -> Condition {
        let Some(t) = t else { return default };
        match Condition::compile(t.get_ref(), networks, &mut self.user_groups) {
            Ok(c) => c,
            Err(e) => {
                let start = t.span().start;
                let quote = if self.src.text[start..].starts_with("\"\"\"") || self.src.text[start..].starts_with("'''")
                {
                    3
                } else {
                    1
                };
                self.err_at(start + quote + e.offset, format!("{what}: {}", e.kind));
                default
            }
        }
    }

    fn group(&mut self, name: &str, g: &PolicyGroupFile, networks: &NetworkTable) -> Option<PolicyGroup> {
        let what = |k: &str| format!("policy_group.{name}.{k}");
        let allow = self.condition(g.allow.as_ref(), Condition::always(), &what("allow"), networks);
        let otp_skip = self.condition(g.otp_skip.as_ref(), Condition::never(), &what("otp_skip"), networks);
        let default_enroll =
            Condition::compile("internal_ip", networks, &mut self.user_groups).unwrap_or_else(|_| Condition::never());
        let enroll_when = self.condition(g.enroll_when.as_ref(), default_enroll, &what("enroll_when"), networks);
        let mut second_factors = Vec::new();
        for f in g.second_factors.iter().flatten() {
            match f.get_ref().as_str() {
                "totp" => second_factors.push(SecondFactor::Totp),
                "push" => second_factors.push(SecondFactor::Push),
                other => self.err(
                    f,
                    format!("{}: unknown second factor `{other}` (expected `totp` or `push`)", what("second_factors")),
                ),
            }
        }
        if g.second_factors.is_none() {
            second_factors.push(SecondFactor::Totp);
        }
        Some(PolicyGroup {
            name: name.to_string(),
            allow,
            otp_skip,
            enroll_when,
            second_factors,
            push_number_matching: g.push_number_matching.unwrap_or(true),
            session_lifetime: self.duration(g.session_lifetime.as_ref(), Duration::from_secs(12 * 3600)),
            idle_timeout: self.duration(g.idle_timeout.as_ref(), Duration::from_secs(2 * 3600)),
        })
    }

    fn apps(
        &mut self,
        files: &[toml::Spanned<AppFile>],
        groups: &[PolicyGroup],
        networks: &NetworkTable,
        device_certificates: bool,
    ) -> (Vec<App>, HostTable) {
        let mut hosts = HostTable::default();
        let mut apps: Vec<App> = Vec::new();
        for f in files {
            let a = f.get_ref();
            let name = a.name.get_ref().clone();
            if apps.iter().any(|x| x.name == name) {
                self.err(&a.name, format!("an app named `{name}` is already defined"));
            }
            for h in &a.hosts {
                match hosts.add(h.get_ref(), apps.len()) {
                    Ok(()) => {}
                    Err(HostError::Invalid(m)) => self.err(h, format!("app `{name}`: {m}")),
                    Err(HostError::Duplicate { host, other_app }) => {
                        let other = apps.get(other_app).map_or(name.as_str(), |x| x.name.as_str()).to_string();
                        self.err(h, format!("app `{name}`: host `{host}` is already used by app `{other}`"))
                    }
                }
            }
            if a.hosts.is_empty() {
                self.err_at(f.span().start, format!("app `{name}` has no hosts"));
            }
            let policy_groups = a
                .policy_groups
                .iter()
                .filter_map(|g| {
                    let id = groups.iter().position(|x| &x.name == g.get_ref());
                    if id.is_none() {
                        self.err(g, format!("app `{name}`: no policy group named `{}`", g.get_ref()));
                    }
                    id
                })
                .collect();
            let bypass =
                self.condition(a.bypass.as_ref(), Condition::never(), &format!("app `{name}` bypass"), networks);
            let device_cert = self.device_cert_mode(a, &name, device_certificates);
            if device_cert == DeviceCertMode::Off {
                let mut uses: Vec<String> = Vec::new();
                if names_device_cert(&bypass) {
                    uses.push("bypass".into());
                }
                for &g in &policy_groups {
                    let g: &PolicyGroup = &groups[g];
                    for (what, c) in [("allow", &g.allow), ("otp_skip", &g.otp_skip)] {
                        if names_device_cert(c) {
                            uses.push(format!("policy_group.{}.{what}", g.name));
                        }
                    }
                }
                if !uses.is_empty() {
                    self.warnings.push(format!(
                        "app `{name}` has device_cert = \"off\": device_cert is always false there, in {} (set device_cert = \"request\" to use it)",
                        uses.join(", ")
                    ));
                }
            }
            if let Some(upstream) = self.upstream(a, &name) {
                let display_name = a.display_name.as_deref().map(str::trim).filter(|d| !d.is_empty());
                apps.push(App {
                    counters: metrics::app_counters(&name),
                    display_name: display_name.unwrap_or(&name).to_string(),
                    name,
                    hosts: a.hosts.iter().map(|h| h.get_ref().to_ascii_lowercase()).collect(),
                    upstream,
                    policy_groups,
                    bypass,
                    device_cert,
                    hsts: a.hsts,
                });
            }
        }
        (apps, hosts)
    }

    fn device_cert_mode(&mut self, a: &AppFile, name: &str, device_certificates: bool) -> DeviceCertMode {
        let mode = a.device_cert.as_ref().map(|t| t.get_ref().as_str());
        if let (Some(t), false, Some("request" | "require")) = (a.device_cert.as_ref(), device_certificates, mode) {
            self.err(
                t,
                format!(
                    "app `{name}`: device_cert `{}` needs a [device_certificates] section (the device CA)",
                    t.get_ref()
                ),
            );
        }
        match mode {
            None | Some("off") => DeviceCertMode::Off,
            Some("request") => DeviceCertMode::Request,
            Some("require") => DeviceCertMode::Require,
            Some(other) => {
                let t = a.device_cert.as_ref().expect("matched Some");
                self.err(t, format!("app `{name}`: device_cert `{other}` must be `off`, `request` or `require`"));
                DeviceCertMode::Off
            }
        }
    }

    fn upstream(&mut self, a: &AppFile, name: &str) -> Option<Upstream> {
        let written = a.upstream.get_ref().trim().to_string();
        let resolved = written.to_socket_addrs().ok().and_then(|mut it| it.next());
        let Some(addr) = resolved else {
            self.err(&a.upstream, format!("app `{name}`: upstream `{written}` is not a reachable host:port (it is resolved when the config loads)"));
            return None;
        };
        let host = super::hosts::strip_port(&written).unwrap_or(&written).to_string();
        let sni = a.upstream_sni.as_ref().map_or(host, |t| t.get_ref().clone());
        Some(Upstream { addr, tls: a.upstream_tls, sni, written })
    }

    fn users(&mut self, file: &Text, groups: &[PolicyGroup]) -> Option<Users> {
        let result = Source::read(Path::new(file.get_ref()))
            .and_then(|src| users::load(&src, &|n| groups.iter().position(|g| g.name == n)));
        match result {
            Ok(u) => Some(u),
            Err(e) => {
                if e.0.iter().all(|x| x.line == 0) {
                    self.err(file, format!("users.file: {}", e));
                } else {
                    self.errors.extend(e.0);
                }
                None
            }
        }
    }

    /// Refuses a config whose IP conditions mean nothing because every address is a trusted proxy.
    fn check_trust(&mut self, server: &Server, groups: &[PolicyGroup], apps: &[App]) {
        let t = &server.trusted_proxies.0;
        let uses_ip =
            groups.iter().any(|g| g.allow.uses_ip() || g.otp_skip.uses_ip()) || apps.iter().any(|a| a.bypass.uses_ip());
        if t.iter().any(|c| c.prefix_len() == 0) && uses_ip {
            self.err_at(0, "server.trusted_proxies trusts every address of an IP family (a /0), so any client could claim an internal IP through X-Forwarded-For; list only your load balancers");
        }
    }
}

use users::Users;

/// Whether a condition mentions the `device_cert` term (a word of its source;
/// a network named "device_cert" would count too: this only feeds a warning).
fn names_device_cert(c: &Condition) -> bool {
    c.source().split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).any(|w| w == "device_cert")
}
