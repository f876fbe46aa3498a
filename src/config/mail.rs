//! `[mail]`: the SMTP relay portcullis sends its mail through.
//!
//! Checked here like every other section; `crate::mail` sends. The password
//! and the extra CA are read from their files when the config loads, so a
//! reload picks up a new password and a bad file keeps the old config.

use super::duration;
use super::file::{MailFile, Text};
use rustls::pki_types::CertificateDer;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// TLS from the first byte, "implicit TLS" (port 465).
    Tls,
    /// No TLS: only to a relay on this machine (port 25).
    None,
}

impl MailSecurity {
    pub fn default_port(self) -> u16 {
        match self {
            MailSecurity::StartTls => 587,
            MailSecurity::Tls => 465,
            MailSecurity::None => 25,
        }
    }

    /// As written in the config: `starttls`, `tls` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailSecurity::StartTls => "starttls",
            MailSecurity::Tls => "tls",
            MailSecurity::None => "none",
        }
    }
}

/// `username` and the password read from `password_file`.
#[derive(Clone, PartialEq, Eq)]
pub struct MailCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for MailCredentials {
    /// Never the password: configs are printed in debug logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailCredentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// `[mail]` as the running process reads it.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The relay's host name or IP address (also the name its certificate must carry).
    pub host: String,
    pub port: u16,
    pub security: MailSecurity,
    pub credentials: Option<MailCredentials>,
    /// The envelope sender and `From` address (checked as an address at load).
    pub from_address: String,
    /// The `From` display name, e.g. "Example IT" or "情報システム部".
    pub from_name: Option<String>,
    /// Extra CA certificates trusted for the relay (`ca_file`), beside the system's.
    pub ca: Vec<CertificateDer<'static>>,
    pub ca_file: Option<PathBuf>,
    /// The whole exchange (connect, TLS, send) must finish within this.
    pub timeout: Duration,
    /// `https://host[:port]` that links in mails start with; no trailing slash.
    pub link_base: Option<String>,
    /// How long an emailed invitation's link works (`invitation_ttl`, 72 h by default).
    pub invitation_ttl: Duration,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_INVITATION_TTL: Duration = Duration::from_secs(72 * 3600);

/// Checks `[mail]`; on error, each problem with the offset of the value at fault.
pub fn compile(f: &MailFile) -> Result<MailSettings, Vec<(usize, String)>> {
    let mut errors = Vec::new();
    let mut err = |t: &Text, m: String| errors.push((t.span().start, m));

    let host = f.host.get_ref().trim().to_ascii_lowercase();
    if !valid_host(&host) {
        err(&f.host, format!("mail.host: `{}` is not a host name or IP address", f.host.get_ref()));
    }
    let security = match f.security.as_ref().map(|t| (t, t.get_ref().as_str())) {
        None | Some((_, "starttls")) => MailSecurity::StartTls,
        Some((_, "tls")) => MailSecurity::Tls,
        Some((t, "none")) => {
            if valid_host(&host) && !is_loopback(&host) {
                err(
                    t,
                    format!(
                        "mail.security = \"none\" sends passwords and mail in the clear: only allowed when mail.host \
                         is this machine (localhost, 127.0.0.1, ::1), not `{host}`; use \"starttls\" or \"tls\""
                    ),
                );
            }
            MailSecurity::None
        }
        Some((t, other)) => {
            err(t, format!("mail.security: `{other}` is not one of \"starttls\", \"tls\" or \"none\""));
            MailSecurity::StartTls
        }
    };
    let port = match &f.port {
        None => security.default_port(),
        Some(p) => match u16::try_from(*p.get_ref()) {
            Ok(p) if p > 0 => p,
            _ => {
                errors.push((p.span().start, format!("mail.port: {} is not a port (1 to 65535)", p.get_ref())));
                security.default_port()
            }
        },
    };
    let mut err = |t: &Text, m: String| errors.push((t.span().start, m));
    let credentials = match (&f.username, &f.password_file) {
        (None, None) => None,
        (Some(u), None) => {
            err(u, "mail.username needs mail.password_file (the file that holds the password)".into());
            None
        }
        (None, Some(p)) => {
            err(p, "mail.password_file needs mail.username".into());
            None
        }
        (Some(u), Some(p)) => {
            let username = u.get_ref().trim().to_string();
            if username.is_empty() || has_control(&username) {
                err(u, "mail.username: give the relay account's name (no control characters)".into());
            }
            match read_password(Path::new(p.get_ref())) {
                Ok(password) => Some(MailCredentials { username, password }),
                Err(m) => {
                    err(p, format!("mail.password_file: {m}"));
                    None
                }
            }
        }
    };
    let from_address = f.from_address.get_ref().trim().to_string();
    if let Err(m) = check_address(&from_address) {
        err(&f.from_address, format!("mail.from_address: {m}"));
    }
    let from_name = f.from_name.as_ref().and_then(|t| {
        let name = t.get_ref().trim();
        if has_control(name) || name.chars().count() > 100 {
            err(t, "mail.from_name: at most 100 characters, on one line".into());
        }
        (!name.is_empty()).then(|| name.to_string())
    });
    let (ca, ca_file) = match &f.ca_file {
        None => (Vec::new(), None),
        Some(t) => match read_ca(Path::new(t.get_ref())) {
            Ok(ca) => (ca, Some(PathBuf::from(t.get_ref()))),
            Err(m) => {
                err(t, format!("mail.ca_file: {m}"));
                (Vec::new(), None)
            }
        },
    };
    let timeout = match &f.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => match duration::parse(t.get_ref()) {
            Ok(d) if (1..=300).contains(&d.as_secs()) => d,
            Ok(_) => {
                err(t, format!("mail.timeout: `{}` must be between 1s and 5m", t.get_ref()));
                DEFAULT_TIMEOUT
            }
            Err(m) => {
                err(t, format!("mail.timeout: {m}"));
                DEFAULT_TIMEOUT
            }
        },
    };
    let link_base = f.link_base.as_ref().and_then(|t| match link_base(t.get_ref()) {
        Ok(l) => Some(l),
        Err(m) => {
            err(t, format!("mail.link_base: {m}"));
            None
        }
    });
    let invitation_ttl = match &f.invitation_ttl {
        None => DEFAULT_INVITATION_TTL,
        Some(t) => match duration::parse(t.get_ref()) {
            Ok(d) if (1..=30 * 86_400).contains(&d.as_secs()) => d,
            Ok(_) => {
                err(t, format!("mail.invitation_ttl: `{}` must be between 1s and 30d", t.get_ref()));
                DEFAULT_INVITATION_TTL
            }
            Err(m) => {
                err(t, format!("mail.invitation_ttl: {m}"));
                DEFAULT_INVITATION_TTL
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(MailSettings {
        host,
        port,
        security,
        credentials,
        from_address,
        from_name,
        ca,
        ca_file,
        timeout,
        link_base,
        invitation_ttl,
    })
}

/// A DNS name or an IP address (IPv6 without brackets).
fn valid_host(h: &str) -> bool {
    if h.parse::<IpAddr>().is_ok() {
        return true;
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn is_loopback(h: &str) -> bool {
    h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// An address lettre accepts as `user@domain` (what the relay will be given).
pub fn check_address(a: &str) -> Result<(), String> {
    if a.len() > 254 || has_control(a) {
        return Err(format!("`{}` is not an email address such as it@example.com", a.escape_debug()));
    }
    a.parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|_| format!("`{}` is not an email address such as it@example.com", a.escape_debug()))
}

/// The file's first line, without its line ending; never empty.
fn read_password(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let password = text.lines().next().unwrap_or_default().to_string();
    if password.is_empty() {
        return Err(format!("`{}` is empty: write the relay account's password on its first line", path.display()));
    }
    Ok(password)
}

fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = crate::tls::read_cert_chain(path)?;
    for c in &certs {
        rustls::RootCertStore::empty()
            .add(c.clone())
            .map_err(|e| format!("`{}` holds a certificate that cannot be trusted as a CA: {e}", path.display()))?;
    }
    Ok(certs)
}

/// `https://host[:port]`, lower-cased, without a trailing slash.
fn link_base(text: &str) -> Result<String, String> {
    let bad = || format!("`{text}` is not `https://host[:port]` (no path), e.g. \"https://login.example.com\"");
    let t = text.trim();
    let rest = t.strip_prefix("https://").ok_or_else(bad)?;
    let authority = rest.strip_suffix('/').unwrap_or(rest).to_ascii_lowercase();
    // `[v6]:port` splits after the bracket; a bare IPv6 address has colons left and is refused.
    let split_at = authority.rfind(']').unwrap_or(0);
    let (host, port) = match authority[split_at..].find(':').map(|i| i + split_at) {
        Some(i) => (&authority[..i], Some(&authority[i + 1..])),
        None => (authority.as_str(), None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host.contains(':') && valid_host(host),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if host_ok && port_ok {
        Ok(format!("https://{authority}"))
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::Source;

    #[derive(serde::Deserialize)]
    struct Only {
        mail: MailFile,
    }

    /// Compiles a `[mail]` section; errors as `line:column: message`.
    fn check(body: &str) -> Result<MailSettings, Vec<String>> {
        let src = Source { path: "portcullis.toml".into(), text: format!("[mail]\n{body}") };
        let only: Only = src.parse().map_err(|e| e.0.iter().map(|e| e.message.clone()).collect::<Vec<_>>())?;
        compile(&only.mail).map_err(|errs| {
            errs.into_iter()
                .map(|(at, m)| src.error_at(at, m))
                .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
                .collect()
        })
    }

    const BASE: &str = "host = \"mail.example.com\"\nfrom_address = \"it@example.com\"\n";

    #[test]
    fn defaults_follow_security() {
        let m = check(BASE).unwrap();
        assert_eq!((m.security, m.port, m.timeout), (MailSecurity::StartTls, 587, DEFAULT_TIMEOUT));
        let m = check(&format!("{BASE}security = \"tls\"\ntimeout = \"30s\"\n")).unwrap();
        assert_eq!((m.security, m.port, m.timeout), (MailSecurity::Tls, 465, Duration::from_secs(30)));
        let m = check("host = \"127.0.0.1\"\nfrom_address = \"a@b.example\"\nsecurity = \"none\"\n").unwrap();
        assert_eq!((m.security, m.port), (MailSecurity::None, 25));
        let m =
            check("host = \"localhost\"\nport = 2525\nfrom_address = \"a@b.example\"\nsecurity = \"none\"\n").unwrap();
        assert_eq!(m.port, 2525);
        let m =
            check(&format!("{BASE}from_name = \"情報システム部\"\nlink_base = \"https://Login.example.com:8443/\"\n"))
                .unwrap();
        assert_eq!(m.from_name.as_deref(), Some("情報システム部"));
        assert_eq!(m.link_base.as_deref(), Some("https://login.example.com:8443"));
    }

    #[test]
    fn plain_text_only_to_this_machine() {
        let e = check(&format!("{BASE}security = \"none\"\n")).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("4:12: mail.security = \"none\""), "{e:?}");
        assert!(e[0].contains("not `mail.example.com`"), "{e:?}");
        let e = check(&format!("{BASE}security = \"ssl\"\n")).unwrap_err();
        assert!(e[0].contains("`ssl` is not one of"), "{e:?}");
    }

    #[test]
    fn username_and_password_file_come_together() {
        let e = check(&format!("{BASE}username = \"portcullis\"\n")).unwrap_err();
        assert_eq!(e, vec!["4:12: mail.username needs mail.password_file (the file that holds the password)"]);
        let e = check(&format!("{BASE}password_file = \"/x\"\n")).unwrap_err();
        assert!(e[0].starts_with("4:17: mail.password_file needs mail.username"), "{e:?}");
        let e = check(&format!("{BASE}username = \"u\"\npassword_file = \"/nonexistent/pw\"\n")).unwrap_err();
        assert!(e[0].starts_with("5:17: mail.password_file: cannot read `/nonexistent/pw`"), "{e:?}");

        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret pass\n").unwrap();
        let m = check(&format!("{BASE}username = \"u\"\npassword_file = \"{}\"\n", pw.display())).unwrap();
        let c = m.credentials.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "s3cret pass"));
        assert!(!format!("{c:?}").contains("s3cret"));
        std::fs::write(&pw, "\n").unwrap();
        let e = check(&format!("{BASE}username = \"u\"\npassword_file = \"{}\"\n", pw.display())).unwrap_err();
        assert!(e[0].contains("is empty"), "{e:?}");
    }

    #[test]
    fn bad_values_are_located() {
        for (bad, what) in [
            ("not-an-address", "is not an email address"),
            ("it@", "is not an email address"),
            ("@example.com", "is not an email address"),
            ("it@exa mple.com", "is not an email address"),
            ("it@example.com\\r\\nBcc: x@evil.example", "is not an email address"),
        ] {
            let e = check(&format!("host = \"mail.example.com\"\nfrom_address = \"{bad}\"\n")).unwrap_err();
            assert!(e[0].starts_with("3:16: mail.from_address: ") && e[0].contains(what), "{bad}: {e:?}");
        }
        let e = check("host = \"mail example\"\nfrom_address = \"it@example.com\"\n").unwrap_err();
        assert!(e[0].starts_with("2:8: mail.host"), "{e:?}");
        let e = check(&format!("{BASE}port = 70000\n")).unwrap_err();
        assert!(e[0].contains("mail.port: 70000 is not a port"), "{e:?}");
        let e = check(&format!("{BASE}timeout = \"0s\"\n")).unwrap_err();
        assert!(e[0].contains("between 1s and 5m"), "{e:?}");
        let e = check(&format!("{BASE}timeout = \"soon\"\n")).unwrap_err();
        assert!(e[0].contains("is not a duration"), "{e:?}");
        let e = check(&format!("{BASE}from_name = \"IT\\r\\nBcc: x@evil.example\"\n")).unwrap_err();
        assert!(e[0].contains("mail.from_name"), "{e:?}");
        let e = check(&format!("{BASE}ca_file = \"/nonexistent/ca.pem\"\n")).unwrap_err();
        assert!(e[0].contains("mail.ca_file"), "{e:?}");
        for bad in
            ["http://login.example.com", "https://login.example.com/enroll", "https://", "https://a b", "https://x:0"]
        {
            let e = check(&format!("{BASE}link_base = \"{bad}\"\n")).unwrap_err();
            assert!(e[0].contains("mail.link_base"), "{bad}: {e:?}");
        }
        let e = check("from_address = \"it@example.com\"\n").unwrap_err();
        assert!(e[0].contains("missing field `host`"), "{e:?}");
        let e = check(&format!("{BASE}hots = \"x\"\n")).unwrap_err();
        assert!(e[0].contains("unknown field `hots`"), "{e:?}");
    }
}
