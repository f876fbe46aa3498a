//! Outgoing mail: one message at a time to the `[mail]` relay over SMTP.
//!
//! lettre speaks SMTP (EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA with
//! dot-stuffing); this module owns the connection around it so that:
//! - every reply is hostile input: the stream stops after [`MAX_REPLY_BYTES`]
//!   read, so a relay that never ends a line cannot grow memory;
//! - the whole exchange has one deadline (`[mail] timeout`);
//! - each failure says which step failed, in words an administrator can act
//!   on ([`MailError::reason`]), because the console shows them as
//!   "mail not sent: <reason>".
//!
//! Sending takes a round trip or several to the relay: it belongs to admin
//! actions and login pages, never to the proxied request path.

mod message;

pub use message::Message;

use crate::config::mail::{MailSecurity, MailSettings};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailParameter};
use rustls::pki_types::{CertificateDer, ServerName};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes a relay may send over one connection: greeting, EHLO lists and a
/// handful of replies fit in a few KiB.
pub const MAX_REPLY_BYTES: u64 = 64 * 1024;

/// Why a mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailError {
    /// A header value held a line break or another control character.
    HeaderInjection { field: &'static str },
    /// A header value was refused for another reason (e.g. too long).
    BadHeader { field: &'static str, why: &'static str },
    /// The recipient is not an address.
    BadAddress { value: String },
    /// The body is larger than portcullis sends.
    TooLarge,
    /// The message could not be put together (should not happen once checked).
    Build(String),
    /// The relay's name did not resolve.
    Resolve { server: String, detail: String },
    /// Nothing listens there (or a firewall said no).
    Refused { server: String },
    /// Another connection failure.
    Connect { server: String, detail: String },
    /// The exchange did not finish within `[mail] timeout`.
    Timeout(Duration),
    /// The TLS handshake failed; the text says why ("certificate not trusted").
    Tls(String),
    /// `security = "starttls"` and the relay does not offer STARTTLS.
    NoStartTls { server: String },
    /// Credentials are configured and the relay offers neither AUTH PLAIN nor LOGIN.
    NoAuthMechanism { server: String },
    /// The relay answered a step with an error reply (4xx or 5xx).
    Rejected { step: Step, reply: String },
    /// The connection broke or the relay's reply made no sense.
    Broken { step: Step, detail: String },
}

/// The step of the exchange that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Greeting and EHLO.
    Connection,
    StartTls,
    Authentication,
    Sender,
    Recipient,
    Message,
}

impl MailError {
    /// A short sentence for people: "connection refused by mail.example.com:587".
    pub fn reason(&self) -> String {
        match self {
            MailError::HeaderInjection { field } => {
                format!("the {field} holds a line break or control character (refused before connecting)")
            }
            MailError::BadHeader { field, why } => format!("the {field} is {why}"),
            MailError::BadAddress { value } => format!("`{}` is not an email address", printable(value, 100)),
            MailError::TooLarge => "the message is too large".into(),
            MailError::Build(e) => format!("the message could not be built: {e}"),
            MailError::Resolve { server, detail } => format!("cannot find {server}: {detail}"),
            MailError::Refused { server } => format!("connection refused by {server}"),
            MailError::Connect { server, detail } => format!("cannot connect to {server}: {detail}"),
            MailError::Timeout(d) => format!("timed out after {}", human(*d)),
            MailError::Tls(why) => format!("TLS: {why}"),
            MailError::NoStartTls { server } => {
                format!("{server} does not offer STARTTLS (set security = \"tls\" for port 465)")
            }
            MailError::NoAuthMechanism { server } => format!("{server} offers no AUTH PLAIN or LOGIN"),
            MailError::Rejected { step, reply } => format!("{}: {reply}", step.refused()),
            MailError::Broken { step, detail } => format!("the connection failed during {}: {detail}", step.name()),
        }
    }
}

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

impl std::error::Error for MailError {}

impl Step {
    fn refused(self) -> &'static str {
        match self {
            Step::Connection => "the server refused the connection",
            Step::StartTls => "the server refused STARTTLS",
            Step::Authentication => "authentication refused (check mail.username and mail.password_file)",
            Step::Sender => "the server refused the sender",
            Step::Recipient => "the server refused the recipient",
            Step::Message => "the server refused the message",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Step::Connection => "the greeting",
            Step::StartTls => "STARTTLS",
            Step::Authentication => "authentication",
            Step::Sender => "MAIL FROM",
            Step::Recipient => "RCPT TO",
            Step::Message => "DATA",
        }
    }
}

/// Sends mail through the relay of one `[mail]` section. Cheap to clone;
/// build a new one after a reload.
#[derive(Clone)]
pub struct Mailer {
    settings: Arc<MailSettings>,
    /// The trusted CAs (the system's and `ca_file`), for both TLS paths.
    tls: Arc<rustls::ClientConfig>,
    starttls: Option<TlsParameters>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer").field("server", &self.server()).finish()
    }
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Mailer {
        crate::tls::install_crypto_provider();
        let roots: Vec<CertificateDer<'static>> = system_roots().iter().chain(&settings.ca).cloned().collect();
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(roots.iter().cloned());
        let tls = rustls::ClientConfig::builder().with_root_certificates(store).with_no_client_auth();
        let starttls = roots
            .iter()
            .fold(TlsParameters::builder(settings.host.clone()).certificate_store(CertificateStore::None), |b, c| {
                b.add_root_certificate(Certificate::from_der(c.to_vec()).expect("rustls certificates load as DER"))
            })
            .build_rustls()
            .ok();
        Mailer { settings: Arc::new(settings.clone()), tls: Arc::new(tls), starttls }
    }

    pub fn settings(&self) -> &MailSettings {
        &self.settings
    }

    /// `mail.example.com:587 (starttls)`, for messages.
    pub fn server(&self) -> String {
        let s = &self.settings;
        format!("{} ({})", host_port(&s.host, s.port), s.security.as_str())
    }

    /// Sends one message, within `[mail] timeout`. A message whose headers
    /// could smuggle lines is refused before any connection.
    pub async fn send(&self, msg: &Message) -> Result<(), MailError> {
        let s = &self.settings;
        let from: lettre::Address =
            s.from_address.parse().map_err(|_| MailError::BadAddress { value: s.from_address.clone() })?;
        let rendered = msg.render(&from, s.from_name.as_deref())?;
        match tokio::time::timeout(s.timeout, self.exchange(&rendered)).await {
            Ok(result) => result,
            Err(_) => Err(MailError::Timeout(s.timeout)),
        }
    }

    async fn exchange(&self, m: &message::Rendered) -> Result<(), MailError> {
        let s = &self.settings;
        let server = host_port(&s.host, s.port);
        let tcp = Capped::new(connect(&s.host, s.port).await?);
        let stream: Box<dyn AsyncTokioStream> = match s.security {
            MailSecurity::Tls => {
                let name = ServerName::try_from(s.host.clone()).map_err(|e| MailError::Tls(e.to_string()))?;
                let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| MailError::Tls(tls_reason(&e, &s.host).unwrap_or_else(|| e.to_string())))?;
                Box::new(Tls(tls))
            }
            MailSecurity::StartTls | MailSecurity::None => Box::new(tcp),
        };
        let hello = ClientId::default();
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &hello)
            .await
            .map_err(|e| smtp_error(e, Step::Connection, &s.host))?;
        if s.security == MailSecurity::StartTls {
            if !conn.server_info().supports_feature(Extension::StartTls) {
                return Err(MailError::NoStartTls { server });
            }
            let params = self.starttls.clone().ok_or_else(|| MailError::Tls("no usable CA certificates".into()))?;
            conn.starttls(params, &hello).await.map_err(|e| smtp_error(e, Step::StartTls, &s.host))?;
        }
        if let Some(c) = &s.credentials {
            let mechanisms = [Mechanism::Plain, Mechanism::Login];
            if conn.server_info().get_auth_mechanism(&mechanisms).is_none() {
                return Err(MailError::NoAuthMechanism { server });
            }
            let credentials = Credentials::new(c.username.clone(), c.password.clone());
            conn.auth(&mechanisms, &credentials).await.map_err(|e| smtp_error(e, Step::Authentication, &s.host))?;
        }
        let utf8 = !(m.from.to_string().is_ascii() && m.to.to_string().is_ascii())
            && conn.server_info().supports_feature(Extension::SmtpUtfEight);
        let params = if utf8 { vec![MailParameter::SmtpUtfEight] } else { Vec::new() };
        conn.command(Mail::new(Some(m.from.clone()), params))
            .await
            .map_err(|e| smtp_error(e, Step::Sender, &s.host))?;
        conn.command(Rcpt::new(m.to.clone(), Vec::new())).await.map_err(|e| smtp_error(e, Step::Recipient, &s.host))?;
        conn.command(Data).await.map_err(|e| smtp_error(e, Step::Message, &s.host))?;
        conn.message(&m.bytes).await.map_err(|e| smtp_error(e, Step::Message, &s.host))?;
        // Delivered once DATA is accepted; a relay that drops QUIT changes nothing.
        let _ = conn.quit().await;
        Ok(())
    }
}

/// `host:port`, with brackets around an IPv6 address.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn connect(host: &str, port: u16) -> Result<TcpStream, MailError> {
    let server = host_port(host, port);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| MailError::Resolve { server: host.to_string(), detail: e.to_string() })?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => MailError::Refused { server },
        Some(e) => MailError::Connect { server, detail: e.to_string() },
        None => MailError::Resolve { server: host.to_string(), detail: "no address".into() },
    })
}

/// The system's CA certificates, read once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        // Keep only certificates rustls can use as anchors (lettre refuses the others).
        found.certs.into_iter().filter(|c| rustls::RootCertStore::empty().add(c.clone()).is_ok()).collect()
    })
}

/// Turns lettre's error for `step` into a reason.
fn smtp_error(e: lettre::transport::smtp::Error, step: Step, host: &str) -> MailError {
    let detail = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
    if let Some(code) = e.status() {
        let reply = format!("{code} {}", printable(&detail, 200));
        return MailError::Rejected { step, reply: reply.trim_end().to_string() };
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(c) = cause {
        if let Some(why) = c.downcast_ref::<io::Error>().and_then(|io| tls_reason(io, host)) {
            return MailError::Tls(why);
        }
        cause = c.source();
    }
    if e.is_tls() {
        return MailError::Tls(printable(&detail, 200));
    }
    MailError::Broken { step, detail: printable(&e.to_string(), 200) }
}

/// What a TLS failure inside an I/O error means for the administrator.
fn tls_reason(e: &io::Error, host: &str) -> Option<String> {
    use rustls::CertificateError as C;
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(match tls {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "certificate not trusted (unknown issuer: for a private CA, set mail.ca_file)".into()
        }
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            format!("certificate not trusted (it does not name {host})")
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "certificate not trusted (expired)".into()
        }
        rustls::Error::InvalidCertificate(other) => format!("certificate not trusted ({other:?})"),
        rustls::Error::InvalidMessage(_) => "the server did not answer in TLS (is the port and security right?)".into(),
        other => other.to_string(),
    })
}

/// At most `max` characters, control characters replaced: reply text is the
/// relay's, shown in the console and the terminal.
fn printable(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A stream that fails once the peer has sent [`MAX_REPLY_BYTES`].
#[derive(Debug)]
struct Capped<S> {
    inner: S,
    left: u64,
}

impl<S> Capped<S> {
    fn new(inner: S) -> Capped<S> {
        Capped { inner, left: MAX_REPLY_BYTES }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.left == 0 {
            let e = format!("the server sent more than {} KiB", MAX_REPLY_BYTES / 1024);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.left = self.left.saturating_sub(read);
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Capped<TcpStream> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

/// Implicit TLS (port 465): the handshake is ours, lettre sees a stream.
#[derive(Debug)]
struct Tls(tokio_rustls::client::TlsStream<Capped<TcpStream>>);

impl AsyncRead for Tls {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Tls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.inner.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        let refused = MailError::Refused { server: "mail.example.com:587".into() };
        assert_eq!(refused.reason(), "connection refused by mail.example.com:587");
        assert_eq!(MailError::Timeout(Duration::from_secs(10)).reason(), "timed out after 10s");
        let r = MailError::Rejected { step: Step::Sender, reply: "550 5.7.1 no".into() };
        assert_eq!(r.reason(), "the server refused the sender: 550 5.7.1 no");
        assert_eq!(printable("a\r\nb\u{1b}[31m", 100), "a  b [31m");
        assert_eq!(printable(&"x".repeat(300), 5), "xxxxx…");
        assert_eq!(host_port("::1", 25), "[::1]:25");
    }

    /// A relay that sends an endless line is cut off, not buffered.
    #[tokio::test]
    async fn endless_replies_are_cut_off() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let chunk = vec![b'2'; 16 * 1024];
            while s.write_all(&chunk).await.is_ok() {}
        });
        let settings = MailSettings {
            host: "127.0.0.1".into(),
            port,
            security: MailSecurity::None,
            credentials: None,
            from_address: "it@example.com".into(),
            from_name: None,
            ca: Vec::new(),
            ca_file: None,
            timeout: Duration::from_secs(10),
            link_base: None,
            invitation_ttl: crate::config::mail::DEFAULT_INVITATION_TTL,
        };
        let msg = Message { to: "a@example.com".into(), to_name: None, subject: "s".into(), text: "t".into() };
        let e = Mailer::new(&settings).send(&msg).await.unwrap_err();
        assert!(matches!(e, MailError::Broken { step: Step::Connection, .. }), "{e:?}");
        assert!(e.reason().contains("more than 64 KiB"), "{}", e.reason());
    }
}
