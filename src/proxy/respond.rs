//! Responses the proxy writes itself (never from the upstream): the challenge
//! redirect or 401, the deny page, unknown host, and portal replies. One place
//! maps a decision to bytes on the wire.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

/// A complete response the proxy sends by itself.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
    pub location: Option<String>,
    /// Further headers (`set-cookie`, `content-security-policy`, …).
    pub extra: Vec<(&'static str, String)>,
    /// Headers whose names come from the config (the signed identity's).
    pub named: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// `Strict-Transport-Security` on every answer of portcullis's own, and on an
/// app's with `hsts = true`: one year.
pub const HSTS: &str = "max-age=31536000";

/// The push-wait page runs its one script, from the portal itself.
pub const PUSH_PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The recovery codes page runs its one script (the Copy button), from the portal itself.
pub const CODES_PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The approver web app (its own script, styles, manifest and service worker).
pub const APPROVER_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The portal pages' policy: no scripts, no external resources, no framing.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

impl Reply {
    pub fn html(status: u16, title: &str, message: &str, contact: Option<&str>) -> Reply {
        let contact = contact.map_or(String::new(), |c| format!("<p class=\"contact\">{}</p>", escape(c)));
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{t}</title></head><body><main><h1>{t}</h1><p>{m}</p>{contact}</main></body></html>\n",
            t = escape(title),
            m = escape(message),
        );
        Reply::page(status, body)
    }

    /// A complete HTML document rendered elsewhere (the portal pages).
    pub fn page(status: u16, html: String) -> Reply {
        let extra = vec![("content-security-policy", PAGE_CSP.to_string()), ("x-frame-options", "DENY".to_string())];
        Reply {
            status,
            content_type: "text/html; charset=utf-8",
            body: html.into(),
            location: None,
            extra,
            named: vec![],
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        let mut body = value.to_string();
        body.push('\n');
        Reply {
            status,
            content_type: "application/json",
            body: body.into(),
            location: None,
            extra: vec![],
            named: vec![],
        }
    }

    /// No body: a forward-auth answer, whose headers are the message.
    pub fn empty(status: u16) -> Reply {
        Reply { status, content_type: "text/plain", body: Bytes::new(), location: None, extra: vec![], named: vec![] }
    }

    pub fn with_named_header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Reply {
        self.named.push((name, value));
        self
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.extra.push((name, value));
        self
    }

    /// Replaces the Content-Security-Policy (pages that run their own script).
    pub fn with_csp(mut self, csp: &str) -> Reply {
        self.extra.retain(|(n, _)| *n != "content-security-policy");
        self.extra.push(("content-security-policy", csp.to_string()));
        self
    }

    /// A static file of the portal (the approver app, the push page's script).
    pub fn asset(content_type: &'static str, body: &'static [u8], csp: &str) -> Reply {
        let extra = vec![("content-security-policy", csp.to_string()), ("x-frame-options", "DENY".to_string())];
        Reply { status: 200, content_type, body: Bytes::from_static(body), location: None, extra, named: vec![] }
    }

    /// One `Set-Cookie` per value.
    pub fn with_cookies(mut self, cookies: Vec<String>) -> Reply {
        self.extra.extend(cookies.into_iter().map(|c| ("set-cookie", c)));
        self
    }

    pub fn redirect(status: u16, location: String) -> Reply {
        let mut r = Reply::html(status, "Redirecting", "Redirecting…", None);
        r.location = Some(location);
        r
    }

    /// Writes the reply and ends the response.
    pub async fn send(self, session: &mut Session) -> Result<()> {
        let mut h = ResponseHeader::build(self.status, Some(6))?;
        h.insert_header("content-type", self.content_type)?;
        h.insert_header("content-length", self.body.len().to_string())?;
        h.insert_header("cache-control", "no-store")?;
        h.insert_header("x-content-type-options", "nosniff")?;
        h.insert_header("referrer-policy", "no-referrer")?;
        // Only ever served over HTTPS: browsers should never try plain HTTP.
        h.insert_header("strict-transport-security", HSTS)?;
        if let Some(loc) = self.location {
            h.insert_header("location", loc)?;
        }
        for (name, value) in self.extra {
            h.append_header(name, value)?;
        }
        for (name, value) in self.named {
            h.append_header(name, value)?;
        }
        session.write_response_header(Box::new(h), false).await?;
        session.write_response_body(Some(self.body), true).await?;
        Ok(())
    }
}

/// Whether the client is a browser navigating (redirect it) rather than an API
/// client (answer 401 JSON). Browsers send Fetch Metadata on navigation; older
/// ones at least ask for HTML.
pub fn is_browser_navigation(session: &Session) -> bool {
    let h = &session.req_header().headers;
    let is = |name: &str, value: &[u8]| h.get(name).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value));
    if is("sec-fetch-mode", b"navigate") || is("sec-fetch-dest", b"document") {
        return true;
    }
    if h.contains_key("sec-fetch-mode") {
        return false;
    }
    h.get("accept").is_some_and(|v| v.as_bytes().windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        let r = Reply::html(403, "No <entry>", "a & b", Some("\"call\" x"));
        let body = std::str::from_utf8(&r.body).unwrap();
        assert!(body.contains("No &lt;entry&gt;"));
        assert!(body.contains("a &amp; b"));
        assert!(body.contains("&quot;call&quot; x"));
    }
}
