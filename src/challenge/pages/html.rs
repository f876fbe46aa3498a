//! HTML and URL escaping, and the page frame every portal page shares.
//!
//! Everything interpolated into a page goes through [`escape`] (text and attribute
//! values alike) or [`query_component`] (values placed in a URL); the only markup
//! inserted as-is is the server-generated QR code.

use super::{text, Lang, Text};
use std::fmt::Write as _;

/// The one stylesheet: inline, because the pages load nothing from anywhere.
const STYLE: &str = "\
body{margin:0;padding:1rem;font-family:system-ui,sans-serif;line-height:1.6;background:#f4f5f7;color:#1c1e21}
main,nav{max-width:30rem;margin:0 auto}
main{background:#fff;border:1px solid #d5d9de;border-radius:8px;padding:1.25rem 1.5rem}
nav{text-align:right;font-size:.9rem;margin-bottom:.5rem}
nav ul{list-style:none;margin:0;padding:0}nav li{display:inline;margin-left:1rem}
nav a[aria-current]{color:inherit;font-weight:700;text-decoration:none}
h1{font-size:1.4rem;margin-top:0}h2{font-size:1.1rem;margin-top:1.5rem}
label{display:block;font-weight:600;margin-top:1rem}
input{box-sizing:border-box;width:100%;font-family:inherit;font-size:1.1rem;padding:.5rem;border:1px solid #767d86;border-radius:4px}
button,.button{display:inline-block;font-family:inherit;margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem;border:0;border-radius:4px;background:#1d5fbf;color:#fff;text-decoration:none;cursor:pointer}
button.secondary,.button.secondary{background:#e4e7eb;color:#1c1e21}
.push-number{margin:1.5rem 0;text-align:center}.push-number strong{font-size:3.5rem;letter-spacing:.15em;font-variant-numeric:tabular-nums}
:focus-visible{outline:3px solid #e8a400;outline-offset:2px}
.error{background:#fdecec;border-left:4px solid #b3261e;color:#8c1d18;padding:.5rem .75rem}
.warning{background:#fff4d6;border-left:4px solid #e8a400;padding:.5rem .75rem}
.certs li{margin-bottom:.5rem}
.hint,.contact{color:#4a5058}
.qr{margin:1rem 0}.qr svg{display:block;width:100%;max-width:14rem;height:auto}
.key{font-size:1.2rem;word-spacing:.4em;overflow-wrap:anywhere}
.context{margin:0 0 .5rem;color:#4a5058;font-size:.95rem}.context strong{color:#1c1e21}
.codes{columns:2;column-gap:2.5rem;font-size:1.1rem;padding-left:2.2rem;font-variant-numeric:tabular-nums}
.codes code{white-space:nowrap}
.code-actions .button,.code-actions button{margin-right:.5rem}
form.action{margin-top:1rem}form.action button{margin-top:0}form.action .hint{margin:.3rem 0 0;font-size:.9rem}
:lang(ja){word-break:auto-phrase;line-break:strict}
@media (max-width:30rem){body{padding:.5rem}main{padding:1rem}h1{font-size:1.25rem}.codes{columns:1}
.qr{margin:.5rem 0}.qr svg{max-width:8rem}.qr figcaption{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}}
@media print{nav,form,.button,.code-actions{display:none}main{border:0}}
";

/// HTML-escapes `s` for text content and double- or single-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// Appends `s` to `out`, HTML-escaped.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Percent-encodes `s` for a URL query value (everything but RFC 3986 unreserved).
pub fn query_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Keeps `href` when it is a path or query on this host or an `https:` address, so
/// a caller's mistake cannot turn a link into `javascript:` or a scheme-relative URL.
pub fn safe_href<'a>(href: &'a str, fallback: &'a str) -> &'a str {
    let allowed_start = href.starts_with('/') || href.starts_with('?') || href.starts_with("https://");
    let safe = allowed_start && !href.starts_with("//") && !href.contains(|c: char| c.is_ascii_control() || c == '\\');
    if safe {
        href
    } else {
        fallback
    }
}

/// A catalog text with its `{name}` placeholders replaced; text and values are escaped.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let escaped: Vec<(&str, String)> = values.iter().map(|(n, v)| (*n, escape(v))).collect();
    let refs: Vec<(&str, &str)> = escaped.iter().map(|(n, v)| (*n, v.as_str())).collect();
    fill_html(template, &refs)
}

/// [`fill`] with values that are already HTML (escaped, with markup of our own).
pub fn fill_html(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|i| open + i) else {
            break;
        };
        escape_into(&mut out, &rest[..open]);
        let name = &rest[open + 1..close];
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(value),
            None => escape_into(&mut out, &rest[open..=close]),
        }
        rest = &rest[close + 1..];
    }
    escape_into(&mut out, rest);
    out
}

/// The language switch: one link per language, each named in its own language.
fn language_switch(out: &mut String, lang: Lang, hrefs: [(Lang, &str); 2]) {
    let _ = write!(out, "<nav aria-label=\"{}\"><ul>", escape(text(lang, Text::LanguageSwitchLabel)));
    for (target, href) in hrefs {
        let code = target.code();
        let fallback = if target == Lang::Ja { "?lang=ja" } else { "?lang=en" };
        let current = if target == lang { " aria-current=\"true\"" } else { "" };
        let _ = write!(
            out,
            "<li><a href=\"{}\" lang=\"{code}\" hreflang=\"{code}\"{current}>{}</a></li>",
            escape(safe_href(href, fallback)),
            escape(text(target, Text::LanguageName)),
        );
    }
    out.push_str("</ul></nav>\n");
}

/// A complete document around `body`; `context` (the line above the title)
/// and `body` are already-escaped HTML.
pub fn document(lang: Lang, title: Text, switch: [(Lang, &str); 2], context: &str, body: &str) -> String {
    let title = escape(text(lang, title));
    let mut out = String::with_capacity(STYLE.len() + body.len() + 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<meta name=\"robots\" content=\"noindex\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        lang.code()
    );
    language_switch(&mut out, lang, switch);
    let _ = write!(out, "<main>\n{context}<h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_the_five_html_specials() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(escape("ユーザー plain"), "ユーザー plain");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn query_component_encodes_reserved_and_non_ascii() {
        assert_eq!(query_component("/app?a=1&b=2#x"), "%2Fapp%3Fa%3D1%26b%3D2%23x");
        assert_eq!(query_component("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(query_component("日"), "%E6%97%A5");
        assert_eq!(query_component("\"<> "), "%22%3C%3E%20");
    }

    #[test]
    fn safe_href_refuses_scripts_and_scheme_relative_urls() {
        assert_eq!(safe_href("/app/page?x=1", "/"), "/app/page?x=1");
        assert_eq!(safe_href("?lang=ja&x=1", "/"), "?lang=ja&x=1");
        assert_eq!(safe_href("https://app.example/x", "/"), "https://app.example/x");
        for bad in ["javascript:alert(1)", "//evil.example/", "/\\evil.example", "http://x", ""] {
            assert_eq!(safe_href(bad, "/fallback"), "/fallback", "{bad}");
        }
        assert_eq!(safe_href("/a\nb", "/f"), "/f");
    }

    #[test]
    fn fill_replaces_known_placeholders_and_escapes_everything() {
        assert_eq!(fill("Hi {name} & {who}", &[("name", "<b>")]), "Hi &lt;b&gt; &amp; {who}");
        assert_eq!(fill("{a}{a}", &[("a", "'")]), "&#39;&#39;");
        assert_eq!(fill("open { only", &[]), "open { only");
    }

    #[test]
    fn document_has_lang_title_viewport_and_no_external_resources() {
        let page =
            document(Lang::Ja, Text::LoginTitle, [(Lang::En, "?lang=en"), (Lang::Ja, "?lang=ja")], "", "<p>x</p>\n");
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"ja\">"));
        assert!(page.contains("<title>ログイン</title>"));
        assert!(page.contains("name=\"viewport\""));
        assert!(page.contains("<a href=\"?lang=ja\" lang=\"ja\" hreflang=\"ja\" aria-current=\"true\">日本語</a>"));
        assert!(!page.contains("<script") && !page.contains("http"));
    }
}
