//! Outgoing mail against a real SMTP server (aiosmtpd on loopback):
//! STARTTLS with AUTH, implicit TLS, and each failure's reason as the console
//! will show it; then `portcullis admin mail test` both ways.

mod common;

use common::smtp::{SmtpOptions, SmtpServer, SmtpTls};
use portcullis::config::mail::{MailCredentials, MailSecurity, MailSettings};
use portcullis::mail::{MailError, Mailer, Message};
use std::path::Path;
use std::time::Duration;

const USER: &str = "portcullis";
const PASSWORD: &str = "relay-pässword";

/// A CA and a certificate for `localhost` and 127.0.0.1, in `dir`.
fn certs(dir: &Path) -> portcullis::tls::DevCerts {
    portcullis::tls::install_crypto_provider();
    portcullis::tls::make_dev_certs(dir, &["localhost".into(), "127.0.0.1".into()]).unwrap()
}

fn settings(port: u16, security: MailSecurity, ca: Option<&Path>) -> MailSettings {
    MailSettings {
        host: "localhost".into(),
        port,
        security,
        credentials: None,
        from_address: "it@example.com".into(),
        from_name: Some("情報システム部".into()),
        ca: ca.map(|p| portcullis::tls::read_cert_chain(p).unwrap()).unwrap_or_default(),
        ca_file: ca.map(Path::to_path_buf),
        timeout: Duration::from_secs(10),
        link_base: None,
        invitation_ttl: portcullis::config::mail::DEFAULT_INVITATION_TTL,
    }
}

fn with_login(mut s: MailSettings, password: &str) -> MailSettings {
    s.credentials = Some(MailCredentials { username: USER.into(), password: password.into() });
    s
}

fn message(to: &str) -> Message {
    Message {
        to: to.into(),
        to_name: Some("山田 花子".into()),
        subject: "ポートカリスへの招待 (enrollment)".into(),
        text: "山田さん、こんにちは。\n\n.starts with a dot\nhttps://login.example.com/enroll?x=1\n".into(),
    }
}

fn starttls_server(certs: &portcullis::tls::DevCerts, refuse: Option<&str>) -> SmtpServer {
    SmtpServer::start(SmtpOptions {
        tls: SmtpTls::StartTls { cert: certs.server_cert.clone(), key: certs.server_key.clone() },
        auth: Some((USER.into(), PASSWORD.into())),
        refuse: refuse.map(str::to_string),
    })
}

#[tokio::test]
async fn starttls_with_auth_delivers_a_japanese_message() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let server = starttls_server(&certs, None);
    let mailer =
        Mailer::new(&with_login(settings(server.port(), MailSecurity::StartTls, Some(&certs.ca_cert)), PASSWORD));
    mailer.send(&message("hanako@example.com")).await.unwrap();

    let raw = server.wait_for(1);
    assert!(raw[0].lines().all(|l| l.is_ascii()), "headers and body are 7-bit on the wire:\n{}", raw[0]);
    let m = SmtpServer::read(&server.files()[0]);
    assert_eq!(m["subject"], "ポートカリスへの招待 (enrollment)");
    assert_eq!(m["from"], "情報システム部 <it@example.com>");
    assert_eq!(m["to"], "山田 花子 <hanako@example.com>");
    assert_eq!(m["envelope_to"], "hanako@example.com");
    assert_eq!(m["content_type"], "text/plain");
    assert_eq!(m["charset"], "utf-8");
    // Lines end in CRLF on the wire, as RFC 5322 wants.
    let body = m["body"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(body, "山田さん、こんにちは。\n\n.starts with a dot\nhttps://login.example.com/enroll?x=1\n");
    assert!(m["message_id"].as_str().unwrap().ends_with("@example.com>"), "{m}");
    assert!(!m["date"].as_str().unwrap().is_empty(), "{m}");
    assert_eq!(m["defects"], serde_json::json!([]), "{m}");
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let server = SmtpServer::start(SmtpOptions {
        tls: SmtpTls::Implicit { cert: certs.server_cert.clone(), key: certs.server_key.clone() },
        auth: Some((USER.into(), PASSWORD.into())),
        refuse: None,
    });
    let mut s = with_login(settings(server.port(), MailSecurity::Tls, Some(&certs.ca_cert)), PASSWORD);
    s.host = "127.0.0.1".into(); // the certificate names the IP address too
    Mailer::new(&s).send(&message("hanako@example.com")).await.unwrap();
    let m = SmtpServer::read(&server.wait_for(1).first().map(|_| server.files()[0].clone()).unwrap());
    assert_eq!(m["subject"], "ポートカリスへの招待 (enrollment)");
}

#[tokio::test]
async fn wrong_password_is_an_authentication_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let server = starttls_server(&certs, None);
    let s = with_login(settings(server.port(), MailSecurity::StartTls, Some(&certs.ca_cert)), "wrong");
    let e = Mailer::new(&s).send(&message("hanako@example.com")).await.unwrap_err();
    assert!(e.reason().starts_with("authentication refused"), "{}", e.reason());
    assert!(e.reason().contains("535"), "{}", e.reason());
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn refused_recipient_shows_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let server = starttls_server(&certs, Some("gone@example.com"));
    let s = with_login(settings(server.port(), MailSecurity::StartTls, Some(&certs.ca_cert)), PASSWORD);
    let e = Mailer::new(&s).send(&message("gone@example.com")).await.unwrap_err();
    assert!(e.reason().starts_with("the server refused the recipient: 550 5.1.1"), "{}", e.reason());
    assert!(e.reason().contains("recipient refused by the test server"), "{}", e.reason());
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn server_down_is_connection_refused() {
    let port = common::free_port();
    let mut s = settings(port, MailSecurity::StartTls, None);
    s.host = "127.0.0.1".into();
    let e = Mailer::new(&s).send(&message("hanako@example.com")).await.unwrap_err();
    assert_eq!(e.reason(), format!("connection refused by 127.0.0.1:{port}"));
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_failure() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(&dir.path().join("server"));
    let other = portcullis::tls::make_dev_certs(&dir.path().join("other"), &["localhost".into()]).unwrap();
    let server = starttls_server(&certs, None);
    for ca in [None, Some(other.ca_cert.as_path())] {
        let s = with_login(settings(server.port(), MailSecurity::StartTls, ca), PASSWORD);
        let e = Mailer::new(&s).send(&message("hanako@example.com")).await.unwrap_err();
        assert!(e.reason().starts_with("TLS: certificate not trusted"), "{}", e.reason());
    }
    // A trusted CA, but a certificate that does not name the host dialled.
    let localhost_only = SmtpServer::start(SmtpOptions {
        tls: SmtpTls::StartTls { cert: other.server_cert.clone(), key: other.server_key.clone() },
        ..SmtpOptions::default()
    });
    let mut s = settings(localhost_only.port(), MailSecurity::StartTls, Some(&other.ca_cert));
    s.host = "127.0.0.1".into();
    let reason = Mailer::new(&s).send(&message("hanako@example.com")).await.unwrap_err().reason();
    assert!(reason.starts_with("TLS: certificate not trusted (it does not name 127.0.0.1)"), "{reason}");
    assert!(localhost_only.messages().is_empty());
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn starttls_is_required_when_configured() {
    let server = SmtpServer::start(SmtpOptions::default());
    let e = Mailer::new(&settings(server.port(), MailSecurity::StartTls, None))
        .send(&message("hanako@example.com"))
        .await
        .unwrap_err();
    assert!(e.reason().contains("does not offer STARTTLS"), "{}", e.reason());
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn header_injection_is_refused_before_connecting() {
    // Nothing listens: a connection attempt would say "connection refused".
    let s = settings(common::free_port(), MailSecurity::StartTls, None);
    let mailer = Mailer::new(&s);
    let attempts = [
        Message { subject: "Hello\r\nBcc: eve@evil.example".into(), ..message("hanako@example.com") },
        Message { to_name: Some("Hanako\nBcc: eve@evil.example".into()), ..message("hanako@example.com") },
        Message { to: "hanako@example.com\r\nBcc: eve@evil.example".into(), ..message("x@example.com") },
    ];
    for m in attempts {
        let e = mailer.send(&m).await.unwrap_err();
        assert!(matches!(e, MailError::HeaderInjection { .. }), "{e:?}");
        assert!(e.reason().contains("refused before connecting"), "{}", e.reason());
    }
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let (_socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut s = settings(port, MailSecurity::StartTls, None);
    s.host = "127.0.0.1".into();
    s.timeout = Duration::from_secs(1);
    let e = Mailer::new(&s).send(&message("hanako@example.com")).await.unwrap_err();
    assert_eq!(e.reason(), "timed out after 1s");
    hold.abort();
}

#[test]
fn admin_mail_test_sends_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(&dir.path().join("smtp"));
    let server = starttls_server(&certs, Some("gone@example.com"));
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let mail = format!(
        "\n[mail]\nhost = \"localhost\"\nport = {}\nusername = \"{USER}\"\npassword_file = \"{}\"\n\
         from_address = \"it@example.com\"\nfrom_name = \"IT\"\nca_file = \"{}\"\n",
        server.port(),
        password_file.display(),
        certs.ca_cert.display()
    );
    let env = common::Env::new("", &format!("{}{mail}", common::APPS));
    let config = common::path_str(&env.config);

    let (code, out, err) = common::portcullis(&["admin", "--config", config, "mail", "test", "hanako@example.com"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), format!("sent to hanako@example.com via localhost:{} (starttls)", server.port()));
    let m = SmtpServer::read(&server.wait_for(1).first().map(|_| server.files()[0].clone()).unwrap());
    assert_eq!(m["subject"], "portcullis: test message");
    assert_eq!(m["from"], "IT <it@example.com>");

    let (code, out, err) = common::portcullis(&["admin", "--config", config, "mail", "test", "gone@example.com"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.starts_with("mail not sent: the server refused the recipient: 550"), "{err}");
    assert_eq!(server.messages().len(), 1);

    // The config itself is checked first: a plain-text relay off this machine is refused.
    std::fs::write(
        &env.config,
        std::fs::read_to_string(&env.config)
            .unwrap()
            .replace("host = \"localhost\"", "host = \"mail.example.com\"\nsecurity = \"none\""),
    )
    .unwrap();
    let (code, _, err) = common::portcullis(&["admin", "--config", config, "mail", "test", "hanako@example.com"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("portcullis.toml:") && err.contains("mail.security = \"none\""), "{err}");
}
