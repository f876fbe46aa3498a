//! Message framing and size limits: which requests may be forwarded at all.
//!
//! Upstream connections are shared between clients, so a request whose end
//! two HTTP parsers could find in different places lets one client smuggle a
//! request into another's connection. Pingora already refuses the worst
//! forms; this module refuses everything that is not the one plain spelling,
//! as nginx and HAProxy do:
//!
//! - `Content-Length`: one header, a plain decimal number (no sign, no
//!   leading zero, no list such as `5, 5`);
//! - `Transfer-Encoding`: one header, exactly `chunked`, and never together
//!   with `Content-Length` (Pingora drops the `Content-Length` and goes on;
//!   here the raw header block is read to see it);
//! - a request asking for an `Upgrade` has no body.
//!
//! Pingora then re-frames the body toward the upstream, so the upstream only
//! ever sees its canonical chunking or length. Sizes follow nginx's and
//! HAProxy's defaults (`[limits]`): a request line over the limit gets 414,
//! headers over theirs 431. Every refusal closes the connection.

use crate::config::Limits;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE};
use pingora::http::RequestHeader;

/// Why a request is refused before anything else looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: framing that two parsers could read differently.
    Framing(&'static str),
    /// 414: the request line is longer than `limits.request_line`.
    TargetTooLong,
    /// 431: too many headers, one too long, or all together too large.
    HeadersTooLarge(&'static str),
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::Framing(_) => 400,
            Refusal::TargetTooLong => 414,
            Refusal::HeadersTooLarge(_) => 431,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::Framing(m) | Refusal::HeadersTooLarge(m) => m,
            Refusal::TargetTooLong => "The request target is too long.",
        }
    }
}

/// Checks sizes and framing. `raw_header` is the HTTP/1 header block as
/// received (`None` for HTTP/2, whose framing is the stream's); it is read
/// only when the request has a `Transfer-Encoding`.
pub fn check(
    req: &RequestHeader,
    raw_header: impl FnOnce() -> Option<bytes::Bytes>,
    limits: &Limits,
) -> Result<(), Refusal> {
    check_sizes(req, limits)?;
    check_framing(req, raw_header)
}

fn check_sizes(req: &RequestHeader, limits: &Limits) -> Result<(), Refusal> {
    // method SP target SP "HTTP/1.1"
    if req.method.as_str().len() + req.raw_path().len() + 10 > limits.request_line {
        return Err(Refusal::TargetTooLong);
    }
    if req.headers.len() > limits.headers {
        return Err(Refusal::HeadersTooLarge("The request has too many headers."));
    }
    let mut total = 0;
    for (name, value) in &req.headers {
        // name ": " value CRLF
        let line = name.as_str().len() + value.len() + 4;
        if line > limits.header {
            return Err(Refusal::HeadersTooLarge("A request header is too large."));
        }
        total += line;
    }
    if total > limits.headers_total {
        return Err(Refusal::HeadersTooLarge("The request headers are too large."));
    }
    Ok(())
}

fn check_framing(req: &RequestHeader, raw_header: impl FnOnce() -> Option<bytes::Bytes>) -> Result<(), Refusal> {
    let mut lengths = req.headers.get_all(CONTENT_LENGTH).iter();
    let length = match (lengths.next(), lengths.next()) {
        (None, _) => None,
        (Some(v), None) => Some(
            plain_decimal(v.as_bytes()).ok_or(Refusal::Framing("Content-Length must be a plain decimal number."))?,
        ),
        (Some(_), Some(_)) => return Err(Refusal::Framing("More than one Content-Length header.")),
    };
    let mut encodings = req.headers.get_all(TRANSFER_ENCODING).iter();
    let chunked = match (encodings.next(), encodings.next()) {
        (None, _) => false,
        (Some(v), None) if v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked") => true,
        _ => return Err(Refusal::Framing("Transfer-Encoding must be exactly `chunked`.")),
    };
    if chunked && (length.is_some() || raw_header().is_some_and(|raw| has_content_length_line(&raw))) {
        return Err(Refusal::Framing("Content-Length and Transfer-Encoding together."));
    }
    if req.headers.contains_key(UPGRADE) && (chunked || length.is_some_and(|n| n > 0)) {
        return Err(Refusal::Framing("A request asking for an Upgrade may not have a body."));
    }
    Ok(())
}

/// `0`, or digits without a leading zero, that fit a `u64`.
fn plain_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || (v.len() > 1 && v[0] == b'0') || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Whether the raw HTTP/1 header block has a `Content-Length` line (which
/// Pingora removes from the parsed headers when `Transfer-Encoding` is there).
fn has_content_length_line(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'\n').skip(1).any(|line| {
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        name.trim_ascii().eq_ignore_ascii_case(b"content-length")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/upload", None).unwrap();
        for (n, v) in headers {
            r.append_header(n.to_string(), *v).unwrap();
        }
        r
    }

    fn framing(headers: &[(&str, &str)]) -> Result<(), Refusal> {
        check(&req(headers), || None, &Limits::default())
    }

    #[test]
    fn plain_framing_passes() {
        assert_eq!(framing(&[]), Ok(()));
        assert_eq!(framing(&[("content-length", "0")]), Ok(()));
        assert_eq!(framing(&[("content-length", "1234")]), Ok(()));
        assert_eq!(framing(&[("transfer-encoding", "chunked")]), Ok(()));
        assert_eq!(framing(&[("Transfer-Encoding", "Chunked")]), Ok(()));
        assert_eq!(framing(&[("upgrade", "websocket"), ("content-length", "0")]), Ok(()));
    }

    #[test]
    fn ambiguous_lengths_are_refused() {
        for v in ["05", "+5", "-5", "5, 5", "5,5", " 5x", "0x5", "", "5 5", "99999999999999999999"] {
            assert!(matches!(framing(&[("content-length", v)]), Err(Refusal::Framing(_))), "{v:?}");
        }
        let two = [("content-length", "5"), ("content-length", "5")];
        assert!(matches!(framing(&two), Err(Refusal::Framing(_))));
    }

    #[test]
    fn anything_but_a_lone_chunked_is_refused() {
        for v in ["gzip, chunked", "chunked, gzip", "identity", "chunked;q=1", "xchunked", "chunked, chunked"] {
            assert!(matches!(framing(&[("transfer-encoding", v)]), Err(Refusal::Framing(_))), "{v:?}");
        }
        let two = [("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")];
        assert!(matches!(framing(&two), Err(Refusal::Framing(_))));
        let both = [("transfer-encoding", "chunked"), ("content-length", "5")];
        assert!(matches!(framing(&both), Err(Refusal::Framing(_))));
    }

    #[test]
    fn content_length_seen_in_the_raw_header_block() {
        let r = req(&[("transfer-encoding", "chunked")]);
        let raw = || Some(bytes::Bytes::from_static(b"POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 5\r\n\r\n"));
        assert!(matches!(check(&r, raw, &Limits::default()), Err(Refusal::Framing(_))));
        let raw = || Some(bytes::Bytes::from_static(b"POST / HTTP/1.1\r\nX-Content-Length: 5\r\n\r\n"));
        assert_eq!(check(&r, raw, &Limits::default()), Ok(()));
    }

    #[test]
    fn upgrade_with_a_body_is_refused() {
        for body in [("content-length", "5"), ("transfer-encoding", "chunked")] {
            assert!(matches!(framing(&[("upgrade", "websocket"), body]), Err(Refusal::Framing(_))));
        }
    }

    #[test]
    fn sizes_follow_the_limits() {
        let limits = Limits::default();
        let long_target = format!("/{}", "a".repeat(8 * 1024));
        let r = RequestHeader::build("GET", long_target.as_bytes(), None).unwrap();
        assert_eq!(check(&r, || None, &limits), Err(Refusal::TargetTooLong));
        let big = "v".repeat(8 * 1024);
        assert!(matches!(framing(&[("x-big", &big)]), Err(Refusal::HeadersTooLarge(_))));
        let many: Vec<(String, &str)> = (0..101).map(|i| (format!("x-h{i}"), "1")).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert!(matches!(framing(&many), Err(Refusal::HeadersTooLarge(_))));
        let seven_k = "v".repeat(7 * 1024);
        let five: Vec<(String, &str)> = (0..5).map(|i| (format!("x-h{i}"), seven_k.as_str())).collect();
        let five: Vec<(&str, &str)> = five.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert_eq!(framing(&five), Err(Refusal::HeadersTooLarge("The request headers are too large.")));
        assert_eq!(framing(&five[..4]), Ok(()));
    }
}
