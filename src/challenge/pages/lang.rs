//! Which language a portal page is shown in.

/// A language the portal pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    /// Chooses by the `?lang=` override first, then by `Accept-Language` (q-values
    /// honoured, first listed wins a tie); anything unknown or malformed falls back to
    /// English.
    pub fn negotiate(query_lang: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(lang) = query_lang.and_then(Lang::from_tag) {
            return lang;
        }
        accept_language.and_then(best_accepted).unwrap_or(Lang::En)
    }

    /// The language code, as used in `lang` attributes and the `?lang=` parameter.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    /// Matches a language tag by its primary subtag: `ja`, `ja-JP`, `EN-gb`.
    fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?;
        if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else if primary.eq_ignore_ascii_case("ja") {
            Some(Lang::Ja)
        } else {
            None
        }
    }
}

/// The supported language with the highest q-value in an `Accept-Language` header.
fn best_accepted(header: &str) -> Option<Lang> {
    let mut best: Option<(Lang, u16)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::from_tag) else {
            continue;
        };
        let Some(q) = quality(parts) else { continue };
        if q > 0 && best.is_none_or(|(_, best_q)| q > best_q) {
            best = Some((lang, q));
        }
    }
    best.map(|(lang, _)| lang)
}

/// The q-value in thousandths (RFC 9110 §12.4.2); `None` when malformed.
fn quality<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut q = 1000;
    for param in params {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            q = parse_qvalue(value.trim())?;
        }
    }
    Some(q)
}

/// Parses `0`, `0.5`, `1`, `1.000` — at most three decimals, never above 1.
fn parse_qvalue(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths =
        frac.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0, |acc, digit| acc * 10 + u16::from(digit - b'0'));
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(header: &str) -> Lang {
        Lang::negotiate(None, Some(header))
    }

    #[test]
    fn accept_language_honours_order_and_q_values() {
        assert_eq!(accept("ja-JP,ja;q=0.9,en;q=0.8"), Lang::Ja);
        assert_eq!(accept("en-US,ja;q=0.5"), Lang::En);
        assert_eq!(accept("en;q=0.4, ja;q=0.6"), Lang::Ja);
        assert_eq!(accept("ja"), Lang::Ja);
        assert_eq!(accept("JA-jp"), Lang::Ja);
        assert_eq!(accept("fr-FR, ja;q=0.3"), Lang::Ja);
        assert_eq!(accept("ja;q=0.5, en;q=0.5"), Lang::Ja, "first listed wins a tie");
    }

    #[test]
    fn unsupported_or_refused_languages_fall_back_to_english() {
        assert_eq!(accept("fr"), Lang::En);
        assert_eq!(accept("*"), Lang::En);
        assert_eq!(accept("ja;q=0"), Lang::En);
        assert_eq!(accept(""), Lang::En);
        assert_eq!(Lang::negotiate(None, None), Lang::En);
    }

    #[test]
    fn malformed_items_are_skipped() {
        assert_eq!(accept(";;;,,=q"), Lang::En);
        assert_eq!(accept("ja;q=2"), Lang::En);
        assert_eq!(accept("ja;q=abc"), Lang::En);
        assert_eq!(accept("ja;q=0.12345"), Lang::En);
        assert_eq!(accept("ja;q"), Lang::En);
        assert_eq!(accept("ja;q=1.5, fr"), Lang::En);
        assert_eq!(accept("ja;q=-1, ja-JP;q=0.2"), Lang::Ja);
        assert_eq!(accept("\u{0}\u{ff}ja日本語"), Lang::En);
    }

    #[test]
    fn query_override_comes_first() {
        assert_eq!(Lang::negotiate(Some("ja"), Some("en-US")), Lang::Ja);
        assert_eq!(Lang::negotiate(Some("en"), Some("ja-JP")), Lang::En);
        assert_eq!(Lang::negotiate(Some("JA"), None), Lang::Ja);
    }

    #[test]
    fn garbage_override_falls_through_to_the_header() {
        assert_eq!(Lang::negotiate(Some("klingon"), Some("ja")), Lang::Ja);
        assert_eq!(Lang::negotiate(Some("<script>"), None), Lang::En);
        assert_eq!(Lang::negotiate(Some(""), Some("fr")), Lang::En);
    }

    #[test]
    fn codes() {
        assert_eq!(Lang::En.code(), "en");
        assert_eq!(Lang::Ja.code(), "ja");
    }
}
