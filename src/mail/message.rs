//! One plain-text mail: checked (no header injection) and rendered as RFC 5322
//! bytes. lettre does the encodings: RFC 2047 for a non-ASCII subject or name,
//! 7bit, quoted-printable or base64 for the body, whichever is shortest.

use super::MailError;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::Address;

/// A plain-text UTF-8 mail to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The recipient's address, e.g. `alice@example.com`.
    pub to: String,
    /// The recipient's display name ("Alice Example", "山田 花子").
    pub to_name: Option<String>,
    /// May be Japanese: encoded per RFC 2047.
    pub subject: String,
    /// The body, UTF-8 text; line breaks as `\n` or `\r\n`.
    pub text: String,
}

/// Longest subject or display name accepted, in characters.
const MAX_HEADER_CHARS: usize = 500;
/// Largest body accepted, in bytes: portcullis's mails are a few lines.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// A mail ready for the relay: envelope addresses and the bytes after DATA.
pub(crate) struct Rendered {
    pub from: Address,
    pub to: Address,
    pub bytes: Vec<u8>,
}

impl Message {
    /// Refuses what could smuggle headers or recipients (a line break or any
    /// other control character in a header value), before any connection.
    pub fn check(&self) -> Result<Address, MailError> {
        header_value("to", &self.to)?;
        let to = self.to.trim().parse::<Address>().map_err(|_| MailError::BadAddress { value: self.to.clone() })?;
        if let Some(name) = &self.to_name {
            header_value("to_name", name)?;
        }
        header_value("subject", &self.subject)?;
        if self.text.len() > MAX_BODY_BYTES {
            return Err(MailError::TooLarge);
        }
        Ok(to)
    }

    /// The message as sent: From with its display name, To, Subject, Date, a
    /// fresh Message-ID in the sender's domain, and the text body.
    pub(crate) fn render(&self, from: &Address, from_name: Option<&str>) -> Result<Rendered, MailError> {
        let to = self.check()?;
        let name = |n: Option<&str>| n.map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
        let id = format!("<{}@{}>", hex::encode(rand::random::<[u8; 16]>()), from.domain());
        let message = lettre::Message::builder()
            .from(Mailbox::new(name(from_name), from.clone()))
            .to(Mailbox::new(name(self.to_name.as_deref()), to.clone()))
            .subject(self.subject.trim())
            .message_id(Some(id))
            .date_now()
            .header(ContentType::TEXT_PLAIN)
            .body(self.text.replace("\r\n", "\n"))
            .map_err(|e| MailError::Build(e.to_string()))?;
        Ok(Rendered { from: from.clone(), to, bytes: message.formatted() })
    }
}

fn header_value(field: &'static str, value: &str) -> Result<(), MailError> {
    if value.chars().any(char::is_control) {
        return Err(MailError::HeaderInjection { field });
    }
    if value.chars().count() > MAX_HEADER_CHARS {
        return Err(MailError::BadHeader { field, why: "too long" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message {
            to: "alice@example.com".into(),
            to_name: Some("山田 花子".into()),
            subject: "ポートカリスへの招待".into(),
            text: "こんにちは。\nhttps://login.example.com/enroll\n".into(),
        }
    }

    #[test]
    fn renders_encoded_headers_and_body() {
        let from: Address = "it@example.com".parse().unwrap();
        let r = msg().render(&from, Some("情報システム部")).unwrap();
        let text = String::from_utf8(r.bytes).unwrap();
        assert!(text.is_ascii(), "{text}");
        assert!(text.contains("Subject: =?utf-8?b?"), "{text}");
        assert!(text.contains("From: =?utf-8?b?"), "{text}");
        assert!(text.contains("<it@example.com>"), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8"), "{text}");
        assert!(text.contains("Date: "), "{text}");
        assert!(text.contains("Message-ID: <") && text.contains("@example.com>"), "{text}");
        assert_eq!(r.to.to_string(), "alice@example.com");
        let ascii = Message { to_name: None, subject: "Hello".into(), text: "plain\n".into(), ..msg() };
        let text = String::from_utf8(ascii.render(&from, None).unwrap().bytes).unwrap();
        assert!(text.contains("Subject: Hello\r\n") && text.contains("From: it@example.com\r\n"), "{text}");
    }

    #[test]
    fn line_breaks_in_headers_are_refused() {
        let cases = [
            Message { subject: "hi\r\nBcc: eve@evil.example".into(), ..msg() },
            Message { subject: "hi\nX: y".into(), ..msg() },
            Message { to_name: Some("A\rB".into()), ..msg() },
            Message { to: "alice@example.com\r\nBcc: eve@evil.example".into(), ..msg() },
            Message { to: "alice@example.com\0".into(), ..msg() },
        ];
        for m in cases {
            let e = m.check().unwrap_err();
            assert!(matches!(e, MailError::HeaderInjection { .. }), "{m:?}: {e:?}");
            assert!(e.reason().contains("line break or control character"), "{}", e.reason());
        }
        for bad in ["alice", "alice@", "a b@example.com", "alice@example.com>, <eve@evil.example"] {
            let e = Message { to: bad.into(), ..msg() }.check().unwrap_err();
            assert!(matches!(e, MailError::BadAddress { .. }), "{bad}: {e:?}");
        }
        let big = Message { text: "x".repeat(MAX_BODY_BYTES + 1), ..msg() };
        assert!(matches!(big.check(), Err(MailError::TooLarge)));
    }
}
