//! `[totp]`'s cooldown settings as the config states them: how long a user
//! whose authenticator was revoked waits, the daily quiet window (for example
//! `20:50-08:10`), and the UTC offset local times are read in.
//!
//! Only the values and their parsing live here; what they mean for a login
//! (when a user may go on) is `challenge::cooldown`'s, which adds the
//! arithmetic to these types. So the config reads the file without knowing
//! the challenge layer, and the import runs one way: challenge → config.

/// A daily window in local time, `start` and `end` in minutes after midnight;
/// it wraps past midnight when `end <= start` (`20:50-08:10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietWindow {
    pub start: u32,
    pub end: u32,
    /// Local time = UTC + offset (seconds).
    pub utc_offset: i32,
}

impl QuietWindow {
    /// Parses `HH:MM-HH:MM` and an offset such as `+09:00`, `-05:30` or `UTC`.
    pub fn parse(window: &str, offset: &str) -> Result<QuietWindow, String> {
        let (a, b) = window.split_once('-').ok_or_else(|| format!("`{window}` is not a window like `20:50-08:10`"))?;
        let start = minutes(a).ok_or_else(|| format!("`{a}` is not a time like `20:50`"))?;
        let end = minutes(b).ok_or_else(|| format!("`{b}` is not a time like `08:10`"))?;
        if start == end {
            return Err(format!("`{window}` is empty: start and end are the same"));
        }
        Ok(QuietWindow { start, end, utc_offset: parse_offset(offset)? })
    }
}

/// The cooldown rule: wait `secs` after a revocation, then for the end of
/// the quiet window if that moment falls inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cooldown {
    pub secs: u64,
    pub quiet: Option<QuietWindow>,
}

/// `HH:MM`, exactly five characters, to minutes after midnight.
fn minutes(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && s.trim().len() == 5).then_some(h * 60 + m)
}

/// `UTC`, `Z`, `+09:00`, `-05:30`.
pub fn parse_offset(s: &str) -> Result<i32, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return Ok(0);
    }
    let bad = || format!("`{s}` is not a UTC offset like `+09:00` or `UTC`");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let m = minutes(rest).filter(|&m| m <= 14 * 60).ok_or_else(bad)?;
    Ok(sign * m as i32 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_offsets_parse() {
        let q = QuietWindow::parse("20:50-08:10", "+09:00").unwrap();
        assert_eq!(q, QuietWindow { start: 20 * 60 + 50, end: 8 * 60 + 10, utc_offset: 9 * 3600 });
        assert_eq!(parse_offset("UTC"), Ok(0));
        assert_eq!(parse_offset("Z"), Ok(0));
        assert_eq!(parse_offset("+14:00"), Ok(14 * 3600));
    }

    #[test]
    fn bad_windows_and_offsets_say_why() {
        assert!(QuietWindow::parse("2050-0810", "UTC").unwrap_err().contains("`2050` is not a time"));
        assert!(QuietWindow::parse("25:00-08:10", "UTC").is_err());
        assert!(QuietWindow::parse("08:10-08:10", "UTC").unwrap_err().contains("is empty"));
        assert!(QuietWindow::parse("20:50-08:10", "JST").unwrap_err().contains("not a UTC offset"));
        assert!(parse_offset("+9").is_err());
        assert!(parse_offset("JST").is_err());
        assert!(parse_offset("+14:01").is_err());
        assert_eq!(parse_offset("-05:30"), Ok(-19_800));
    }
}
