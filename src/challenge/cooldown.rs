//! When may a user whose authenticator was revoked (usually a lost phone)
//! enroll again or finish a login that needs a second factor? After a
//! cooldown, and never inside the organisation's quiet window (for example
//! 20:50–08:10 local time, when nobody could confirm a call to the help desk).
//! Pure arithmetic on Unix seconds and a fixed UTC offset.
//!
//! The settings themselves ([`Cooldown`], [`QuietWindow`]) are read by the
//! config (`config::cooldown`); this module gives them their meaning, so the
//! import runs one way, challenge → config.

use std::fmt;

pub use crate::config::cooldown::{Cooldown, QuietWindow};

/// What a quiet window means: which moments are inside it, and when it ends.
impl QuietWindow {
    fn local_minute(&self, t: u64) -> u32 {
        let local = t as i64 + self.utc_offset as i64;
        (local.rem_euclid(86_400) / 60) as u32
    }

    /// True when `t` (Unix seconds) is inside the window, in local time.
    pub fn contains(&self, t: u64) -> bool {
        let m = self.local_minute(t);
        if self.start < self.end {
            (self.start..self.end).contains(&m)
        } else {
            m >= self.start || m < self.end
        }
    }

    /// The first moment at or after `t` that is outside the window.
    pub fn end_after(&self, t: u64) -> u64 {
        if !self.contains(t) {
            return t;
        }
        let local = t as i64 + self.utc_offset as i64;
        let day_start = local - local.rem_euclid(86_400);
        let mut end = day_start + self.end as i64 * 60;
        if end <= local {
            end += 86_400;
        }
        (end - self.utc_offset as i64) as u64
    }
}

/// What the cooldown rule means for one revocation.
impl Cooldown {
    /// When a user whose authenticator was revoked at `revoked_at` may go on.
    pub fn ready_at(&self, revoked_at: u64) -> u64 {
        let t = revoked_at.saturating_add(self.secs);
        self.quiet.map_or(t, |q| q.end_after(t))
    }

    /// `Some(ready_at)` while the user must still wait.
    pub fn waiting(&self, revoked_at: Option<u64>, now: u64) -> Option<u64> {
        let ready = self.ready_at(revoked_at?);
        (now < ready).then_some(ready)
    }
}

/// Local time for messages: `2026-12-01 08:10 (+09:00)`.
pub struct LocalTime(pub u64, pub i32);

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.0 as i64 + self.1 as i64;
        let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        let off = self.1.abs() / 60;
        let sign = if self.1 < 0 { '-' } else { '+' };
        write!(
            f,
            "{y:04}-{m:02}-{d:02} {:02}:{:02} ({sign}{:02}:{:02})",
            secs / 3600,
            secs % 3600 / 60,
            off / 60,
            off % 60
        )
    }
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01 00:00 UTC.
    const DAY: u64 = 1_796_083_200;

    fn at(h: u64, m: u64) -> u64 {
        DAY + h * 3600 + m * 60
    }

    #[test]
    fn window_wraps_midnight() {
        let q = QuietWindow::parse("20:50-08:10", "UTC").unwrap();
        assert!(q.contains(at(21, 0)));
        assert!(q.contains(at(3, 0)));
        assert!(!q.contains(at(8, 10)));
        assert!(!q.contains(at(12, 0)));
        assert_eq!(q.end_after(at(21, 0)), at(24 + 8, 10));
        assert_eq!(q.end_after(at(3, 0)), at(8, 10));
        assert_eq!(q.end_after(at(12, 0)), at(12, 0));
    }

    #[test]
    fn offsets_shift_the_window() {
        let q = QuietWindow::parse("20:50-08:10", "+09:00").unwrap();
        // 12:00 UTC is 21:00 in Tokyo: quiet until 08:10 Tokyo = 23:10 UTC.
        assert!(q.contains(at(12, 0)));
        assert_eq!(q.end_after(at(12, 0)), at(23, 10));
    }

    #[test]
    fn cooldown_then_quiet_window() {
        let c = Cooldown { secs: 20 * 60, quiet: Some(QuietWindow::parse("20:50-08:10", "UTC").unwrap()) };
        assert_eq!(c.ready_at(at(12, 0)), at(12, 20));
        assert_eq!(c.ready_at(at(20, 40)), at(24 + 8, 10), "cooldown ends inside the window");
        assert_eq!(c.ready_at(at(22, 0)), at(24 + 8, 10), "revoked inside the window");
        assert_eq!(c.ready_at(at(8, 0)), at(8, 20));
        assert_eq!(c.waiting(Some(at(12, 0)), at(12, 19)), Some(at(12, 20)));
        assert_eq!(c.waiting(Some(at(12, 0)), at(12, 20)), None);
        assert_eq!(c.waiting(None, at(12, 0)), None);
    }

    #[test]
    fn local_time_formats() {
        assert_eq!(LocalTime(at(23, 10), 9 * 3600).to_string(), "2026-12-02 08:10 (+09:00)");
        assert_eq!(LocalTime(0, 0).to_string(), "1970-01-01 00:00 (+00:00)");
    }
}
