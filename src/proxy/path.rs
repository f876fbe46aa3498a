//! One reading of the request path.
//!
//! The policy, the portal router and the app must all see the same path, or a
//! request that the proxy read as one thing reaches an app that reads it as
//! another (Tomcat's `/..;/`, an encoded `%2F` that one stack decodes and
//! another does not, a double-encoded `%252e` that a second decode turns into
//! a dot segment). So the target is parsed once, here, into a canonical form
//! that every common backend (nginx, Apache, Tomcat, Express, Go, Python)
//! reads the same way, and the proxy replaces the request's path with it:
//!
//! - percent escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are
//!   decoded; every other escape is kept, with upper-case hex;
//! - dot segments are resolved (RFC 3986 §5.2.4; `..` above the root stays at
//!   the root) and repeated slashes are merged, as nginx does by default;
//! - refused (400), because backends read them differently: `\` and encoded
//!   `/` or `\` (`%2F`, `%5C`), a `;` parameter on an empty or dot segment
//!   (`/..;/`, `/.;/`, `/;/`), NUL and other control characters, a fragment,
//!   invalid or overlong UTF-8, invalid percent escapes, and `%25` followed by
//!   the escape of `.`, `/`, `\` or `%` (double encoding);
//! - anything that is not an origin-form path (starting with `/`) is refused;
//!   the caller handles the asterisk form of `OPTIONS *`.
//!
//! A path that needs none of this is returned borrowed: the common request
//! pays one scan of its bytes and no allocation.

use std::borrow::Cow;

/// Why a path was refused. Each is answered with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Does not start with `/`.
    NotOriginForm,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%2F` or `%5C`: a separator that one backend splits on and another does not.
    EncodedSeparator,
    /// A raw `\`, which some backends read as `/`.
    Backslash,
    /// NUL, another control character, space, or `#`.
    ForbiddenByte,
    /// Escaped bytes that are not valid (or are overlong) UTF-8.
    BadUtf8,
    /// A `;` parameter on an empty or dot segment (`..;`), which Tomcat and
    /// other servlet containers strip before resolving dot segments.
    ParameterOnDotSegment,
    /// `%25` followed by the escape of `.`, `/` or `\`: a second decode by
    /// the backend would make a dot segment or a separator.
    DoubleEncoded,
}

impl PathError {
    pub fn message(self) -> &'static str {
        match self {
            PathError::NotOriginForm => "The request target must be a path starting with /.",
            PathError::BadEscape => "The path has an invalid percent escape.",
            PathError::EncodedSeparator => "The path has an encoded / or \\ (%2F, %5C).",
            PathError::Backslash => "The path has a backslash.",
            PathError::ForbiddenByte => "The path has a control character, space or #.",
            PathError::BadUtf8 => "The path has escaped bytes that are not valid UTF-8.",
            PathError::ParameterOnDotSegment => "The path has a ; parameter on an empty or dot segment.",
            PathError::DoubleEncoded => "The path has a double-encoded dot or slash.",
        }
    }
}

/// The canonical form of `path` (the path part of the target, without the
/// query), borrowed when it is canonical already.
pub fn canonicalize(path: &[u8]) -> Result<Cow<'_, str>, PathError> {
    if path.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    if is_plain(path) {
        // Only ASCII passed `is_plain`.
        return Ok(Cow::Borrowed(std::str::from_utf8(path).map_err(|_| PathError::BadUtf8)?));
    }
    let decoded = decode(path)?;
    Ok(Cow::Owned(resolve_segments(&decoded)?))
}

/// The fast check: only characters that need no decoding, no `;`, no empty
/// or dot segments. True for nearly every real request.
fn is_plain(path: &[u8]) -> bool {
    let mut segment_start = 0;
    for (i, &b) in path.iter().enumerate() {
        if b == b'/' {
            if i > 0 && !is_plain_segment(&path[segment_start + 1..i]) {
                return false;
            }
            segment_start = i;
        } else if !is_plain_byte(b) {
            return false;
        }
    }
    let last = &path[segment_start + 1..];
    last.is_empty() || is_plain_segment(last)
}

fn is_plain_segment(segment: &[u8]) -> bool {
    !matches!(segment, b"" | b"." | b"..")
}

/// Unreserved characters and the sub-delimiters, `:` and `@`, but not `;`
/// (servlet path parameters) and not `%` (escapes).
fn is_plain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The escape at `path[i]` (which is `%`), decoded.
fn escape_at(path: &[u8], i: usize) -> Result<u8, PathError> {
    match (path.get(i + 1).copied().and_then(hex_value), path.get(i + 2).copied().and_then(hex_value)) {
        (Some(h), Some(l)) => Ok(h << 4 | l),
        _ => Err(PathError::BadEscape),
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
}

/// Decodes the escapes of unreserved characters, re-encodes every other
/// escaped or non-ASCII byte in upper-case hex, and refuses what backends
/// read differently. Non-ASCII bytes, raw or escaped, must form valid UTF-8.
fn decode(path: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(path.len());
    let mut utf8_run: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < path.len() {
        let (b, escaped) = match path[i] {
            b'%' => (escape_at(path, i)?, true),
            raw => (raw, false),
        };
        i += if escaped { 3 } else { 1 };
        if b >= 0x80 {
            utf8_run.push(b);
            push_escaped(&mut out, b);
            continue;
        }
        check_utf8_run(&mut utf8_run)?;
        match b {
            b'/' | b'\\' if escaped => return Err(PathError::EncodedSeparator),
            b'\\' => return Err(PathError::Backslash),
            0..=0x1f | 0x7f => return Err(PathError::ForbiddenByte),
            b' ' | b'#' if !escaped => return Err(PathError::ForbiddenByte),
            _ if !escaped || is_unreserved(b) => out.push(b),
            _ => push_escaped(&mut out, b),
        }
    }
    check_utf8_run(&mut utf8_run)?;
    if is_double_encoded(&out) {
        return Err(PathError::DoubleEncoded);
    }
    Ok(out)
}

/// Whether the decoded path holds `%25` followed by the escape of `.`, `/`,
/// `\` or `%` itself: a backend that decodes once more would see a dot
/// segment or a separator. Read on the output, since the hex digits after
/// `%25` may themselves have been escaped (`%25%32%65`).
fn is_double_encoded(out: &[u8]) -> bool {
    out.windows(5)
        .any(|w| &w[..3] == b"%25" && [b"2e", b"2f", b"5c", b"25"].iter().any(|e| w[3..].eq_ignore_ascii_case(*e)))
}

fn check_utf8_run(run: &mut Vec<u8>) -> Result<(), PathError> {
    if run.is_empty() {
        return Ok(());
    }
    let valid = std::str::from_utf8(run).is_ok();
    run.clear();
    if valid {
        Ok(())
    } else {
        Err(PathError::BadUtf8)
    }
}

/// Resolves dot segments and merges repeated slashes in a decoded path
/// (which starts with `/` and is ASCII). A path ending in a dot segment or a
/// slash keeps its trailing slash.
fn resolve_segments(decoded: &[u8]) -> Result<String, PathError> {
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded[1..].split(|&b| b == b'/') {
        if let Some(semi) = segment.iter().position(|&b| b == b';') {
            if matches!(&segment[..semi], b"" | b"." | b"..") {
                return Err(PathError::ParameterOnDotSegment);
            }
        }
        trailing_slash = true;
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            _ => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        // ASCII only: every byte at or above 0x80 was re-encoded by `decode`.
        out.push_str(std::str::from_utf8(segment).map_err(|_| PathError::BadUtf8)?);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Whether a canonical path is under the reserved prefix `/.portcullis`: its
/// first segment, cut at a `;` parameter and in any case (Express and
/// case-insensitive file systems ignore case), is `.portcullis`.
pub fn is_portal_path(canonical: &str) -> bool {
    let Some(rest) = canonical.strip_prefix('/') else {
        return false;
    };
    let first = rest.split(['/', ';']).next().unwrap_or_default();
    first.eq_ignore_ascii_case(".portcullis")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(p: &str) -> Result<String, PathError> {
        canonicalize(p.as_bytes()).map(|c| c.into_owned())
    }

    #[test]
    fn plain_paths_are_borrowed() {
        for p in ["/", "/a", "/a/b/", "/a-b_c~d.e", "/x:y@z!$&'()*+,=", "/.well-known/x", "/a/..b/c.."] {
            assert!(matches!(canonicalize(p.as_bytes()), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_others_normalised() {
        assert_eq!(canon("/%61%62c").unwrap(), "/abc");
        assert_eq!(canon("/%7e%2D").unwrap(), "/~-");
        assert_eq!(canon("/a%20b").unwrap(), "/a%20b");
        assert_eq!(canon("/a%3fb%3b").unwrap(), "/a%3Fb%3B");
        assert_eq!(canon("/%25").unwrap(), "/%25");
        assert_eq!(canon("/%2541").unwrap(), "/%2541");
        assert_eq!(canon("/caf%C3%A9").unwrap(), "/caf%C3%A9");
        assert_eq!(canon("/caf\u{e9}").unwrap(), "/caf%C3%A9");
    }

    #[test]
    fn dot_segments_resolved_and_slashes_merged() {
        assert_eq!(canon("/a/./b/../c").unwrap(), "/a/c");
        assert_eq!(canon("/a/b/..").unwrap(), "/a/");
        assert_eq!(canon("/a/b/.").unwrap(), "/a/b/");
        assert_eq!(canon("/../../x").unwrap(), "/x");
        assert_eq!(canon("/..").unwrap(), "/");
        assert_eq!(canon("//a///b//").unwrap(), "/a/b/");
        assert_eq!(canon("/%2e%2E/x").unwrap(), "/x");
        assert_eq!(canon("/a/.%2e/.portcullis/login").unwrap(), "/.portcullis/login");
        assert_eq!(canon("/a;jsessionid=1/b").unwrap(), "/a;jsessionid=1/b");
    }

    #[test]
    fn ambiguous_forms_are_refused() {
        let cases = [
            ("a", PathError::NotOriginForm),
            ("", PathError::NotOriginForm),
            ("*", PathError::NotOriginForm),
            ("/%", PathError::BadEscape),
            ("/%2", PathError::BadEscape),
            ("/%zz", PathError::BadEscape),
            ("/a%2fb", PathError::EncodedSeparator),
            ("/a%2Fb", PathError::EncodedSeparator),
            ("/a%5cb", PathError::EncodedSeparator),
            ("/a\\b", PathError::Backslash),
            ("/a%00b", PathError::ForbiddenByte),
            ("/a\0b", PathError::ForbiddenByte),
            ("/a%0d%0ab", PathError::ForbiddenByte),
            ("/a%09", PathError::ForbiddenByte),
            ("/a%7f", PathError::ForbiddenByte),
            ("/a b", PathError::ForbiddenByte),
            ("/a#b", PathError::ForbiddenByte),
            ("/..;/x", PathError::ParameterOnDotSegment),
            ("/.;/x", PathError::ParameterOnDotSegment),
            ("/;x/y", PathError::ParameterOnDotSegment),
            ("/a/%2e%2e;x/y", PathError::ParameterOnDotSegment),
            ("/%252e%252e/x", PathError::DoubleEncoded),
            ("/%252F", PathError::DoubleEncoded),
            ("/%255c", PathError::DoubleEncoded),
            ("/%25%32%65%25%32%65/", PathError::DoubleEncoded),
            ("/%25%32e", PathError::DoubleEncoded),
            ("/%252%65", PathError::DoubleEncoded),
            ("/%25252e", PathError::DoubleEncoded),
            ("/%C0%AE", PathError::BadUtf8),
            ("/%E0%80%AE", PathError::BadUtf8),
            ("/%ff", PathError::BadUtf8),
            ("/%C3", PathError::BadUtf8),
            ("/%C3/%A9", PathError::BadUtf8),
            ("/%ED%A0%80", PathError::BadUtf8),
        ];
        for (p, want) in cases {
            assert_eq!(canonicalize(p.as_bytes()), Err(want), "{p}");
        }
        assert_eq!(canonicalize(b"/a\xff"), Err(PathError::BadUtf8));
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        for p in ["/a/./b/../c", "/%61%20/%C3%A9", "//x//", "/a;b/../c", "/%2e", "/x/%7E/"] {
            let once = canon(p).unwrap();
            assert_eq!(canon(&once).unwrap(), once, "{p}");
        }
    }

    #[test]
    fn reserved_prefix_in_every_spelling_backends_read() {
        for p in [
            "/.portcullis",
            "/.portcullis/",
            "/.portcullis/login",
            "/.PORTCULLIS/x",
            "//.portcullis/x",
            "/%2eportcullis/x",
            "/%2Eportcullis/x",
            "/x/../.portcullis/login",
            "/x/%2e%2e/.portcullis/login",
            "/./.portcullis/login",
            "/.portcullis;x/login",
            "/.Portcullis;jsessionid=1",
        ] {
            let c = canon(p).unwrap();
            assert!(is_portal_path(&c), "{p} -> {c}");
        }
        for p in ["/", "/portcullis", "/.portcullisx", "/a/.portcullis/", "/.well-known/x", "/x.portcullis"] {
            let c = canon(p).unwrap();
            assert!(!is_portal_path(&c), "{p}");
        }
        for p in ["/%252eportcullis/x", "/.portcullis%2flogin", "/\\.portcullis/x", "/%5c.portcullis/x"] {
            assert!(canon(p).is_err(), "{p}");
        }
    }

    #[test]
    fn long_paths_have_no_cut_off() {
        let deep = format!("/{}{}", "a/".repeat(5000), "../".repeat(5000));
        assert_eq!(canon(&format!("{deep}.portcullis/login")).unwrap(), "/.portcullis/login");
    }
}
