//! The portal: pages and JSON API under the reserved prefix `/.portcullis/` on
//! every protected host. Requests under it are answered here and never reach
//! the upstream, in whatever spelling a client or an app's path normaliser
//! might read as the prefix (`/.Portcullis/`, `/%2eportcullis/`, `//.portcullis/`).

pub mod redirect;

use crate::config::hosts::AppId;
use crate::config::Config;
use crate::proxy::respond::Reply;
use pingora::proxy::Session;
use pingora::Result;

const PREFIX: &[u8] = b"/.portcullis";

/// Whether a request path is under the reserved prefix.
pub fn is_portal_path(path: &str) -> bool {
    let b = path.as_bytes();
    // Fast path: most requests do not start with "/." or "//" or "/%".
    if b.len() < 2 || !matches!(b[1], b'.' | b'/' | b'%' | b'\\') {
        return false;
    }
    let mut decoded = [0u8; 64];
    let n = decode_prefix(b, &mut decoded);
    // Some app stacks read `\` as `/` and collapse repeated slashes.
    for c in decoded[..n].iter_mut().filter(|c| **c == b'\\') {
        *c = b'/';
    }
    let mut s = &decoded[..n];
    while s.len() > 1 && s[1] == b'/' {
        s = &s[1..];
    }
    s.len() >= PREFIX.len()
        && s[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
        && matches!(
            s.get(PREFIX.len()),
            None | Some(b'/') | Some(b'?') | Some(b';')
        )
}

/// Percent-decodes (three rounds, to defeat double encoding) up to 64 bytes.
fn decode_prefix(b: &[u8], out: &mut [u8; 64]) -> usize {
    let mut n = b.len().min(out.len());
    out[..n].copy_from_slice(&b[..n]);
    for _ in 0..3 {
        let (mut r, mut w) = (0, 0);
        while r < n {
            let byte = match (
                out[r],
                out.get(r + 1).and_then(|&h| hex(h)),
                out.get(r + 2).and_then(|&l| hex(l)),
            ) {
                (b'%', Some(h), Some(l)) if r + 2 < n => {
                    r += 3;
                    h * 16 + l
                }
                (c, _, _) => {
                    r += 1;
                    c
                }
            };
            out[w] = byte;
            w += 1;
        }
        n = w;
    }
    n
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Answers a portal request. Sign-in (password and TOTP) is built on this
/// prefix; until then every portal path says so plainly.
pub async fn handle(session: &mut Session, config: &Config, _app: AppId) -> Result<()> {
    let path = session.req_header().uri.path().to_string();
    let contact = config.portal.contact.as_deref();
    let reply = if path.starts_with("/.portcullis/api/") {
        Reply::json(
            503,
            &serde_json::json!({"error": "login_unavailable", "message": "sign-in is not available on this server yet"}),
        )
    } else if path == "/.portcullis/login" || path == "/.portcullis/otp" {
        Reply::html(503, "Sign-in unavailable", "Signing in through portcullis is not available on this server yet. Ask your administrator.", contact)
    } else {
        Reply::html(404, "Not found", "There is no such portal page.", None)
    };
    reply.send(session).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_prefix_in_every_spelling() {
        for p in [
            "/.portcullis",
            "/.portcullis/",
            "/.portcullis/login",
            "/.PORTCULLIS/x",
            "//.portcullis/x",
            "/%2eportcullis/x",
            "/%2Eportcullis/x",
            "/%252eportcullis/x",
            "/.portcullis%2flogin",
            "/\\.portcullis/x",
            "/.portcullis?x",
            "/.portcullis;x",
        ] {
            assert!(is_portal_path(p), "{p}");
        }
        for p in [
            "/",
            "/portcullis",
            "/.portcullisx",
            "/a/.portcullis/",
            "/.well-known/x",
            "",
            "/%",
            "/%2",
        ] {
            assert!(!is_portal_path(p), "{p}");
        }
    }
}
