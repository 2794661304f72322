//! Cron expressions for backup schedules, evaluated in UTC.
//!
//! Five fields — minute, hour, day of month, month, day of week (0–7, both 0
//! and 7 are Sunday) — or six with a leading seconds field. Each field is `*`,
//! a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of those.
//! As in Vixie cron, when both day fields are restricted a day matches if
//! either does. Names (`MON`, `JAN`) and macros (`@daily`) are accepted for
//! the common cases.

use time::{Date, Duration, Month, OffsetDateTime, Time};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

fn field(text: &str, min: u32, max: u32, names: &[&str], what: &str) -> Result<(u64, bool), String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + min);
        }
        s.parse::<u32>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| format!("{what}: {s:?} is not between {min} and {max}"))
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{what}: bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if step > 1 { max } else { v })
        };
        if lo > hi {
            return Err(format!("{what}: empty range {part:?}"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, text != "*"))
}

impl Cron {
    /// Parses a 5- or 6-field expression or a macro.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match parts.len() {
            5 => ("0", &parts[..]),
            6 => (parts[0], &parts[1..]),
            n => return Err(format!("a schedule has 5 fields (or 6 with seconds first), not {n}")),
        };
        const MONTHS: &[&str] = &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        let (seconds, _) = field(sec, 0, 59, &[], "seconds")?;
        let (minutes, _) = field(rest[0], 0, 59, &[], "minute")?;
        let (hours, _) = field(rest[1], 0, 23, &[], "hour")?;
        let (days, days_restricted) = field(rest[2], 1, 31, &[], "day of month")?;
        let (months, _) = field(rest[3], 1, 12, MONTHS, "month")?;
        let (mut weekdays, weekdays_restricted) = field(rest[4], 0, 7, DAYS, "day of week")?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Cron {
            seconds,
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().number_days_from_sunday()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first time strictly after `t` that matches (UTC, whole seconds);
    /// `None` if none within five years (e.g. `0 0 31 2 *`).
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let t = t.to_offset(time::UtcOffset::UTC);
        let mut c = t.replace_nanosecond(0).ok()? + Duration::seconds(1);
        let limit = t + Duration::days(5 * 366);
        while c <= limit {
            if self.months & (1 << u8::from(c.month())) == 0 {
                let (y, m) = match c.month() {
                    Month::December => (c.year() + 1, Month::January),
                    m => (c.year(), m.next()),
                };
                c = Date::from_calendar_date(y, m, 1)
                    .ok()?
                    .with_time(Time::MIDNIGHT)
                    .assume_utc();
                continue;
            }
            if !self.day_matches(c.date()) {
                c = (c.date() + Duration::days(1)).with_time(Time::MIDNIGHT).assume_utc();
                continue;
            }
            if self.hours & (1 << c.hour()) == 0 {
                c = c.replace_minute(0).ok()?.replace_second(0).ok()? + Duration::hours(1);
                continue;
            }
            if self.minutes & (1 << c.minute()) == 0 {
                c = c.replace_second(0).ok()? + Duration::minutes(1);
                continue;
            }
            if self.seconds & (1 << c.second()) == 0 {
                c += Duration::seconds(1);
                continue;
            }
            return Some(c);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn next(expr: &str, t: OffsetDateTime) -> OffsetDateTime {
        Cron::parse(expr).unwrap().next_after(t).unwrap()
    }

    #[test]
    fn next_times() {
        let t = datetime!(2026-11-25 23:39:30 UTC);
        assert_eq!(next("* * * * *", t), datetime!(2026-11-25 23:40:00 UTC));
        assert_eq!(next("*/15 * * * *", t), datetime!(2026-11-25 23:45:00 UTC));
        assert_eq!(next("0 3 * * *", t), datetime!(2026-11-26 03:00:00 UTC));
        assert_eq!(next("@daily", t), datetime!(2026-11-26 00:00:00 UTC));
        assert_eq!(next("30 2 1 * *", t), datetime!(2026-12-01 02:30:00 UTC));
        assert_eq!(next("0 0 * * MON", t), datetime!(2026-11-30 00:00:00 UTC));
        assert_eq!(next("0 0 * * 7", t), datetime!(2026-11-29 00:00:00 UTC), "7 is Sunday");
        assert_eq!(next("0 0 1 JAN *", t), datetime!(2027-01-01 00:00:00 UTC));
        assert_eq!(next("*/5 * * * * *", t), datetime!(2026-11-25 23:39:35 UTC));
        assert_eq!(next("0 9-17/4 * * 1-5", t), datetime!(2026-11-26 09:00:00 UTC));
        // Both day fields restricted: either matches (the 1st, or a Friday).
        assert_eq!(next("0 0 1 * 5", t), datetime!(2026-11-27 00:00:00 UTC));
        // Strictly after.
        assert_eq!(
            next("0 0 * * *", datetime!(2026-11-26 00:00:00 UTC)),
            datetime!(2026-11-27 00:00:00 UTC)
        );
        assert_eq!(Cron::parse("0 0 31 2 *").unwrap().next_after(t), None);
    }

    #[test]
    fn bad_expressions_say_why() {
        for (expr, hint) in [
            ("* * * *", "5 fields"),
            ("61 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "step"),
            ("5-1 * * * *", "empty range"),
            ("banana * * * *", "minute"),
        ] {
            let e = Cron::parse(expr).unwrap_err();
            assert!(e.contains(hint), "{expr}: {e}");
        }
    }
}
