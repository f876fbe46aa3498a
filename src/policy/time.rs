//! Time conditions: `time("08:00-20:00")`, `weekday("mon-fri")` and
//! `date("2026-12-24..2027-01-03")`, read in the policy's time zone
//! (`[policy] time_zone`, an IANA name; UTC by default).
//!
//! Everything is turned into integers when the config loads — a window into
//! seconds of the day, weekdays into a 7-bit mask, dates into day numbers —
//! so a request compares integers only. The request's local time
//! ([`LocalTime`]) is worked out once per request from its Unix time by the
//! [`Zone`]: the zone's UTC offset (daylight saving included) is cached for
//! the current second in one atomic word, so a request costs one atomic load
//! and a little arithmetic, never an allocation, a lock or a system call.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

const DAY_SECS: i64 = 86_400;
/// The cache keeps Unix seconds below this (year 36812) in 40 bits.
const CACHE_KEY_LIMIT: u64 = 1 << 40;
/// UTC offsets (at most ±26 h) are kept in the low 24 bits with this bias.
const OFFSET_BIAS: i64 = 1 << 23;

/// A moment in the policy's time zone, as the time terms read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalTime {
    /// Seconds since local midnight, 0..86400.
    pub second_of_day: u32,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// The local date as days since 1970-01-01.
    pub day: i32,
}

impl LocalTime {
    /// The local time of Unix time `unix` at UTC offset `offset` (seconds east).
    fn at(unix: i64, offset: i64) -> LocalTime {
        let local = unix + offset;
        let day = local.div_euclid(DAY_SECS);
        LocalTime {
            second_of_day: local.rem_euclid(DAY_SECS) as u32,
            // 1970-01-01 was a Thursday (3 counted from Monday).
            weekday: (day + 3).rem_euclid(7) as u8,
            day: day as i32,
        }
    }
}

/// The policy's time zone, with the offset of the last second asked for.
pub struct Zone {
    name: String,
    tz: jiff::tz::TimeZone,
    /// Unix second (high 40 bits) and its UTC offset plus [`OFFSET_BIAS`]
    /// (low 24 bits): one word, so a reader never sees half of an update.
    cache: AtomicU64,
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::new("UTC".to_string(), jiff::tz::TimeZone::UTC)
    }
}

impl Zone {
    /// The zone of an IANA name such as `Asia/Tokyo` (or `UTC`).
    pub fn named(name: &str) -> Result<Zone, String> {
        let name = name.trim();
        // Only names: a POSIX TZ string or a path would be read another way.
        let plausible = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'))
            && !name.starts_with('/')
            && !name.contains("..");
        let tz = plausible.then(|| jiff::tz::TimeZone::get(name).ok()).flatten().ok_or_else(|| {
            format!(
                "`{}` is not a time zone name of the IANA database (e.g. \"Asia/Tokyo\", \"Europe/Berlin\", \"UTC\")",
                name.escape_default()
            )
        })?;
        Ok(Zone::new(name.to_string(), tz))
    }

    fn new(name: String, tz: jiff::tz::TimeZone) -> Zone {
        let zone = Zone { name, tz, cache: AtomicU64::new(0) };
        zone.cache.store(pack(0, zone.offset_uncached(0)), Ordering::Relaxed);
        zone
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local time at Unix time `unix` (seconds).
    #[inline]
    pub fn local(&self, unix: u64) -> LocalTime {
        let cached = self.cache.load(Ordering::Relaxed);
        let offset = if cached >> 24 == unix {
            (cached & 0xFF_FFFF) as i64 - OFFSET_BIAS
        } else {
            let offset = self.offset_uncached(unix);
            if unix < CACHE_KEY_LIMIT {
                self.cache.store(pack(unix, offset), Ordering::Relaxed);
            }
            offset
        };
        LocalTime::at(unix.min(1 << 62) as i64, offset)
    }

    /// `unix` as the zone's wall clock, e.g. `2026-12-07T21:00:00+09:00[Asia/Tokyo]`
    /// (for `portcullis decide`; not on the request path).
    pub fn describe(&self, unix: u64) -> String {
        let ts = i64::try_from(unix).ok().and_then(|s| jiff::Timestamp::from_second(s).ok());
        ts.map_or_else(|| unix.to_string(), |ts| ts.to_zoned_datetime(self.tz.clone()).to_string())
    }

    /// The zone's UTC offset at `unix`, in seconds east, from the tz database.
    fn offset_uncached(&self, unix: u64) -> i64 {
        let ts = i64::try_from(unix).ok().and_then(|s| jiff::Timestamp::from_second(s).ok());
        ts.map_or(0, |ts| i64::from(self.tz.to_offset(ts).seconds()))
    }
}

fn pack(unix: u64, offset: i64) -> u64 {
    (unix << 24) | (offset + OFFSET_BIAS) as u64
}

/// `time("08:00-20:00")`: from the start (included) to the end (excluded),
/// in seconds of the local day; an end before the start crosses midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    start: u32,
    end: u32,
}

impl TimeWindow {
    /// `HH:MM-HH:MM` (seconds allowed: `HH:MM:SS`; `24:00` as an end).
    pub fn parse(s: &str) -> Result<TimeWindow, String> {
        let (a, b) = s.split_once('-').ok_or_else(|| {
            format!("`{}` is not a window such as \"08:00-20:00\" (start-end, 24-hour clock)", s.escape_default())
        })?;
        let start = clock_time(a.trim(), false)?;
        let end = clock_time(b.trim(), true)?;
        if start == end || (start == 0 && end == DAY_SECS as u32) {
            return Err(format!(
                "`{}` covers the whole day or none of it; write `always` or `never` instead",
                s.escape_default()
            ));
        }
        Ok(TimeWindow { start, end })
    }

    #[inline]
    pub fn holds(self, t: &LocalTime) -> bool {
        let s = t.second_of_day;
        if self.start < self.end {
            self.start <= s && s < self.end
        } else {
            s >= self.start || s < self.end
        }
    }
}

/// `HH:MM` or `HH:MM:SS` as seconds of the day; `24:00` only as an end.
fn clock_time(s: &str, end: bool) -> Result<u32, String> {
    let bad = || format!("`{}` is not a time of day such as \"08:00\" or \"20:50\"", s.escape_default());
    let mut parts = s.split(':');
    let mut field = |max: u32| -> Result<Option<u32>, String> {
        match parts.next() {
            None => Ok(None),
            Some(p) if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) => {
                let v: u32 = p.parse().map_err(|_| bad())?;
                if v > max {
                    return Err(bad());
                }
                Ok(Some(v))
            }
            Some(_) => Err(bad()),
        }
    };
    let (h, m) = (field(24)?.ok_or_else(bad)?, field(59)?.ok_or_else(bad)?);
    let sec = field(59)?.unwrap_or(0);
    if parts.next().is_some() {
        return Err(bad());
    }
    let total = h * 3600 + m * 60 + sec;
    if h == 24 && (!end || total != DAY_SECS as u32) {
        return Err(format!("`{}`: hours go from 00 to 23 (24:00 only as the end)", s.escape_default()));
    }
    Ok(total)
}

/// `weekday("mon-fri")`: a set of days, bit 0 = Monday.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weekdays(u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Weekdays {
    /// Days and ranges separated by commas: `mon-fri`, `sat,sun`, `fri-mon`
    /// (a range may wrap past Sunday).
    pub fn parse(s: &str) -> Result<Weekdays, String> {
        let mut mask = 0u8;
        for item in s.split(',') {
            let (a, b) = match item.split_once('-') {
                Some((a, b)) => (day_index(a)?, day_index(b)?),
                None => (day_index(item)?, day_index(item)?),
            };
            let mut d = a;
            loop {
                mask |= 1 << d;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
        Ok(Weekdays(mask))
    }

    #[inline]
    pub fn holds(self, t: &LocalTime) -> bool {
        (self.0 >> t.weekday) & 1 == 1
    }
}

fn day_index(s: &str) -> Result<u8, String> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    DAY_NAMES.iter().position(|d| *d == lower).map(|i| i as u8).ok_or_else(|| {
        format!(
            "`{}` is not a day; write mon, tue, wed, thu, fri, sat or sun, ranges such as \"mon-fri\" and lists such as \"sat,sun\"",
            s.escape_default()
        )
    })
}

/// `date("2026-12-24..2027-01-03")`: local dates, both ends included, as
/// days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateRange {
    first: i32,
    last: i32,
}

impl DateRange {
    /// `YYYY-MM-DD..YYYY-MM-DD`, or one date.
    pub fn parse(s: &str) -> Result<DateRange, String> {
        let (a, b) = s.split_once("..").unwrap_or((s, s));
        let (first, last) = (day_number(a.trim())?, day_number(b.trim())?);
        if first > last {
            return Err(format!("`{}` ends before it starts", s.escape_default()));
        }
        Ok(DateRange { first, last })
    }

    #[inline]
    pub fn holds(self, t: &LocalTime) -> bool {
        self.first <= t.day && t.day <= self.last
    }
}

/// A `YYYY-MM-DD` date (a real one: no February 30th) as days since 1970-01-01.
fn day_number(s: &str) -> Result<i32, String> {
    let bad = || format!("`{}` is not a date such as \"2026-12-24\" (YYYY-MM-DD)", s.escape_default());
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
        return Err(bad());
    }
    let (y, m, d): (i16, i8, i8) =
        (s[..4].parse().map_err(|_| bad())?, s[5..7].parse().map_err(|_| bad())?, s[8..].parse().map_err(|_| bad())?);
    jiff::civil::Date::new(y, m, d).map_err(|_| format!("{} (there is no such day)", bad()))?;
    Ok(days_from_civil(i64::from(y), i64::from(m), i64::from(d)) as i32)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix time of a local wall-clock moment in `zone` (tests only).
    fn unix(zone: &str, civil: &str) -> u64 {
        let dt: jiff::civil::DateTime = civil.parse().unwrap();
        let tz = jiff::tz::TimeZone::get(zone).unwrap();
        dt.to_zoned_datetime(tz).unwrap().timestamp().as_second() as u64
    }

    fn at(zone: &Zone, unix: u64) -> LocalTime {
        zone.local(unix)
    }

    #[test]
    fn days_count_from_1970() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(day_number("2026-12-01"), Ok(1_796_083_200 / 86_400));
        assert_eq!(day_number("1969-12-31"), Ok(-1));
        let utc = Zone::default();
        assert_eq!(at(&utc, 0), LocalTime { second_of_day: 0, weekday: 3, day: 0 });
        // 2026-12-07 is a Monday.
        let t = at(&utc, unix("UTC", "2026-12-07T13:14:15"));
        assert_eq!((t.weekday, t.second_of_day), (0, 13 * 3600 + 14 * 60 + 15));
    }

    #[test]
    fn windows_cross_midnight_start_included_end_excluded() {
        let quiet = TimeWindow::parse("20:50-08:10").unwrap();
        let office = TimeWindow::parse("08:00-20:00").unwrap();
        let tokyo = Zone::named("Asia/Tokyo").unwrap();
        let rows = [
            ("2026-12-07T20:49:59", false, false),
            ("2026-12-07T20:50:00", true, false),
            ("2026-12-07T23:59:59", true, false),
            ("2026-12-08T00:00:00", true, false),
            ("2026-12-08T08:00:00", true, true),
            ("2026-12-08T08:09:59", true, true),
            ("2026-12-08T08:10:00", false, true),
            ("2026-12-08T19:59:59", false, true),
            ("2026-12-08T20:00:00", false, false),
        ];
        for (civil, in_quiet, in_office) in rows {
            let t = at(&tokyo, unix("Asia/Tokyo", civil));
            assert_eq!((quiet.holds(&t), office.holds(&t)), (in_quiet, in_office), "{civil}");
        }
        let to_midnight = TimeWindow::parse("18:00-24:00").unwrap();
        assert!(to_midnight.holds(&at(&tokyo, unix("Asia/Tokyo", "2026-12-08T23:59:59"))));
        assert!(!to_midnight.holds(&at(&tokyo, unix("Asia/Tokyo", "2026-12-09T00:00:00"))));
        let seconds = TimeWindow::parse(" 08:00:30 - 09:00 ").unwrap();
        assert!(!seconds.holds(&at(&tokyo, unix("Asia/Tokyo", "2026-12-08T08:00:29"))));
        assert!(seconds.holds(&at(&tokyo, unix("Asia/Tokyo", "2026-12-08T08:00:30"))));
    }

    #[test]
    fn weekdays_are_the_zones_not_utcs() {
        let weekdays = Weekdays::parse("mon-fri").unwrap();
        let weekend = Weekdays::parse("sat,sun").unwrap();
        let long_weekend = Weekdays::parse("Fri-mon").unwrap();
        let tokyo = Zone::named("Asia/Tokyo").unwrap();
        let la = Zone::named("America/Los_Angeles").unwrap();
        // Monday 2026-12-07 07:00 in Tokyo is Sunday 22:00 UTC.
        let t = unix("Asia/Tokyo", "2026-12-07T07:00:00");
        assert_eq!(at(&Zone::default(), t).weekday, 6);
        assert!(weekdays.holds(&at(&tokyo, t)) && !weekend.holds(&at(&tokyo, t)));
        assert!(!weekdays.holds(&at(&Zone::default(), t)));
        // Friday 2026-12-11 20:00 in Los Angeles is Saturday 04:00 UTC.
        let t = unix("America/Los_Angeles", "2026-12-11T20:00:00");
        assert!(weekdays.holds(&at(&la, t)) && !weekend.holds(&at(&la, t)));
        assert!(weekend.holds(&at(&Zone::default(), t)));
        for (civil, want) in [("2026-12-10", false), ("2026-12-11", true), ("2026-12-14", true), ("2026-12-15", false)]
        {
            let t = at(&tokyo, unix("Asia/Tokyo", &format!("{civil}T12:00:00")));
            assert_eq!(long_weekend.holds(&t), want, "{civil}");
        }
        assert_eq!(Weekdays::parse("wed").unwrap(), Weekdays(0b100));
        assert_eq!(Weekdays::parse("sun-sun").unwrap(), Weekdays(0b100_0000));
    }

    #[test]
    fn daylight_saving_moves_the_offset() {
        // Berlin: 2026-03-29 02:00 CET becomes 03:00 CEST (00:59:59 → 01:00:00 UTC).
        let berlin = Zone::named("Europe/Berlin").unwrap();
        let before = at(&berlin, unix("UTC", "2026-03-29T00:59:59"));
        let after = at(&berlin, unix("UTC", "2026-03-29T01:00:00"));
        assert_eq!(before.second_of_day, 3600 + 59 * 60 + 59);
        assert_eq!(after.second_of_day, 3 * 3600);
        let early = TimeWindow::parse("02:00-03:00").unwrap();
        assert!(!early.holds(&before) && !early.holds(&after), "02:xx does not happen that night");
        // New York: 2026-03-08 02:00 EST becomes 03:00 EDT; 08:00 local moves from 13:00 to 12:00 UTC.
        let ny = Zone::named("America/New_York").unwrap();
        let office = TimeWindow::parse("08:00-20:00").unwrap();
        assert!(!office.holds(&at(&ny, unix("UTC", "2026-03-07T12:30:00"))), "07:30 EST");
        assert!(office.holds(&at(&ny, unix("UTC", "2026-03-09T12:30:00"))), "08:30 EDT");
        // And back on 2026-11-01: 01:30 happens twice, both inside 01:00-02:00.
        let one = TimeWindow::parse("01:00-02:00").unwrap();
        assert!(one.holds(&at(&ny, unix("UTC", "2026-11-01T05:30:00"))));
        assert!(one.holds(&at(&ny, unix("UTC", "2026-11-01T06:30:00"))));
        assert!(!one.holds(&at(&ny, unix("UTC", "2026-11-01T07:30:00"))));
    }

    #[test]
    fn date_ranges_cross_the_year_end() {
        let holidays = DateRange::parse("2026-12-24..2027-01-03").unwrap();
        let tokyo = Zone::named("Asia/Tokyo").unwrap();
        let rows = [
            ("2026-12-23T23:59:59", false),
            ("2026-12-24T00:00:00", true),
            ("2026-12-31T23:59:59", true),
            ("2027-01-01T00:00:00", true),
            ("2027-01-03T23:59:59", true),
            ("2027-01-04T00:00:00", false),
        ];
        for (civil, want) in rows {
            assert_eq!(holidays.holds(&at(&tokyo, unix("Asia/Tokyo", civil))), want, "{civil}");
        }
        // 2026-12-23 20:00 UTC is already the 24th in Tokyo.
        let t = unix("UTC", "2026-12-23T20:00:00");
        assert!(holidays.holds(&at(&tokyo, t)) && !holidays.holds(&at(&Zone::default(), t)));
        let one = DateRange::parse("2028-02-29").unwrap();
        assert!(one.holds(&at(&tokyo, unix("Asia/Tokyo", "2028-02-29T12:00:00"))));
        assert!(!one.holds(&at(&tokyo, unix("Asia/Tokyo", "2028-03-01T00:00:00"))));
    }

    #[test]
    fn bad_windows_days_dates_and_zones_are_refused() {
        for bad in ["8:00-20:00", "08:00", "08:60-09:00", "24:00-08:00", "08:00-24:01", "08:00-08:00", "00:00-24:00"] {
            assert!(TimeWindow::parse(bad).is_err(), "{bad}");
        }
        for bad in ["", "monday", "mon-", "mon,,fri", "mo-fr"] {
            assert!(Weekdays::parse(bad).is_err(), "{bad}");
        }
        for bad in ["2026-02-30", "2026-13-01", "2027-01-03..2026-12-24", "2026-1-1", "tomorrow", "2026-12-24.."] {
            assert!(DateRange::parse(bad).is_err(), "{bad}");
        }
        for bad in ["Asia/Tokio", "", "/etc/passwd", "../zoneinfo/UTC", "EST5EDT,M3.2.0,M11.1.0"] {
            assert!(Zone::named(bad).is_err(), "{bad}");
        }
        assert!(Zone::named("UTC").is_ok() && Zone::named("Asia/Tokyo").is_ok());
    }

    #[test]
    fn the_cached_second_gives_the_same_answer() {
        let ny = Zone::named("America/New_York").unwrap();
        let t = unix("UTC", "2026-03-08T06:59:59");
        let first = ny.local(t);
        assert_eq!(ny.local(t), first);
        assert_eq!(ny.local(t + 1).second_of_day, 3 * 3600, "the next second is EDT");
        assert_eq!(ny.local(t), first);
        assert_eq!(ny.local(u64::MAX).day, ny.local(u64::MAX).day, "no panic past the cache's range");
    }
}
