//! Cron schedules: five fields (minute hour day-of-month month day-of-week) or an
//! `@`-nickname, evaluated in an IANA time zone. The validator and the scheduler share this
//! parser, so a schedule that validates is one that fires.
//!
//! Why hand-written and not a cron crate: croner 4.0.3 (the most complete maintained one,
//! with a jiff backend; tried for issue 19) parses and matches every field form weft
//! documents, but it cannot express weft's documented DST rules nor its error messages:
//!
//! - Spring forward: croner carries only "fixed-time" schedules (one minute, one hour)
//!   across the gap. `0,30 2 * * *` and `*/15 2 * * *` in Europe/Amsterdam, next after
//!   2026-03-28T23:00Z: croner skips 2026-03-29 (next 2026-03-30T00:00Z); weft fires once
//!   at the end of the gap, 2026-03-29T01:00Z (03:00 CEST).
//! - Fall back: croner runs "interval" schedules on both occurrences of a repeated time.
//!   `*/30 * * * *` in Europe/Amsterdam on 2026-10-25: croner 00:00Z, 00:30Z, 01:00Z,
//!   01:30Z, 02:00Z; weft fires 02:00 and 02:30 once (their first occurrence, CEST), so
//!   00:00Z, 00:30Z, 02:00Z. `30 * * * *`: croner 00:30Z, 01:30Z, 02:30Z; weft 00:30Z, 02:30Z.
//! - Errors name neither the field nor the value: `99 * * * *` gives "Component error:
//!   Number out of bounds."; weft says "minute `99` is out of range 0-59".
//! - `@midnight` is not a croner nickname, `5/15` (from 5, every 15) needs its
//!   `sloppy_ranges`, and a schedule that never fires (`0 0 31 2 *`) is an error after a
//!   search limit rather than "no next slot".
//!
//! Using croner for matching alone would still leave the DST walk and the messages here, and
//! would widen the accepted language (`W`, `+`, `#L`, seconds) beyond what is documented.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

/// How far ahead (or back) a schedule is searched for its next (or previous) slot.
const SEARCH_DAYS: i64 = 366 * 30;

/// How far a UTC offset may move at one transition; bounds the search start around a time.
const MAX_SHIFT_HOURS: i64 = 3;

/// A cron expression that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{schedule}` is not a valid cron schedule: {reason}")]
pub struct ScheduleError {
    /// The expression.
    pub schedule: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed five-field cron schedule (minute resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days: u32,
    /// `L`: the last day of the month.
    last_day: bool,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, Sunday = 0.
    weekdays: u8,
    /// Per weekday (Sunday = 0), bits 1..=5: `DAY#n`.
    nth_weekdays: [u8; 7],
    days_star: bool,
    weekdays_star: bool,
}

const MONTH_NAMES: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses five fields or an `@`-nickname.
    ///
    /// # Errors
    /// The expression is malformed or out of range.
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        let err = |reason: String| ScheduleError {
            schedule: expr.to_string(),
            reason,
        };
        let expanded = match expr.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(err(format!("unknown nickname `{s}`"))),
            s => s,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(err(format!(
                "expected five fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        };
        let minutes = field(minute, 0, 59, &[], "minute").map_err(&err)?;
        let hours = field(hour, 0, 23, &[], "hour").map_err(&err)?;
        let (day_items, last_day) = {
            let mut last = false;
            let rest: Vec<&str> = day
                .split(',')
                .filter(|i| {
                    let l = i.eq_ignore_ascii_case("L");
                    last |= l;
                    !l
                })
                .collect();
            (rest.join(","), last)
        };
        let days = if day_items.is_empty() {
            0
        } else {
            field(&day_items, 1, 31, &[], "day-of-month").map_err(&err)?
        };
        let months = field(month, 1, 12, MONTH_NAMES, "month").map_err(&err)?;
        let mut nth_weekdays = [0u8; 7];
        let mut plain = Vec::new();
        for item in weekday.split(',') {
            if let Some((d, n)) = item.split_once('#') {
                let d = value(d, 0, 7, DAY_NAMES, "day-of-week").map_err(&err)? % 7;
                let n: u8 = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=5).contains(n))
                    .ok_or_else(|| err(format!("`{item}`: the week after # must be 1 to 5")))?;
                nth_weekdays[d as usize] |= 1 << n;
            } else {
                plain.push(item);
            }
        }
        let mut weekdays = 0u8;
        if !plain.is_empty() {
            let bits = field(&plain.join(","), 0, 7, DAY_NAMES, "day-of-week").map_err(&err)?;
            for d in 0..=7u32 {
                if bits & (1 << d) != 0 {
                    weekdays |= 1 << (d % 7);
                }
            }
        }
        let star = |f: &str| f.starts_with('*') || f == "?";
        Ok(Schedule {
            minutes,
            hours: hours as u32,
            days: days as u32,
            last_day,
            months: months as u16,
            weekdays,
            nth_weekdays,
            days_star: star(day),
            weekdays_star: star(weekday),
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let by_day = self.days & (1 << d.day()) != 0 || (self.last_day && d == d.last_of_month());
        let wd = d.weekday().to_sunday_zero_offset() as usize;
        let nth = (d.day() - 1) / 7 + 1;
        let by_weekday = self.weekdays & (1 << wd) != 0 || self.nth_weekdays[wd] & (1 << nth) != 0;
        match (self.days_star, self.weekdays_star) {
            (true, true) => true,
            (true, false) => by_weekday,
            (false, true) => by_day,
            (false, false) => by_day || by_weekday,
        }
    }

    /// The first slot strictly after `after`, in `tz`; `None` when there is none within 30
    /// years.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = after.to_zoned(tz.clone()).datetime() - MAX_SHIFT_HOURS.hours();
        self.scan(tz, start, true, |t| t > after)
    }

    /// The last slot at or before `at`, in `tz`; `None` when there is none within 30 years.
    pub fn last_at_or_before(&self, at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = at.to_zoned(tz.clone()).datetime() + MAX_SHIFT_HOURS.hours();
        self.scan(tz, start, false, |t| t <= at)
    }

    /// Walks the matching local times from `start` (forward or backward) and returns the
    /// instant of the first one `accept`s. Local times map to instants monotonically (see
    /// [`slot_instant`]), so the first accepted one is the nearest.
    fn scan(
        &self,
        tz: &TimeZone,
        start: DateTime,
        forward: bool,
        accept: impl Fn(Timestamp) -> bool,
    ) -> Option<Timestamp> {
        let step = if forward { 1 } else { -1 };
        let mut date = start.date();
        let hours: Vec<i8> = ordered(u64::from(self.hours), 24, forward);
        let minutes: Vec<i8> = ordered(self.minutes, 60, forward);
        for _ in 0..SEARCH_DAYS {
            if self.day_matches(date) {
                for &h in &hours {
                    for &m in &minutes {
                        let dt = date.to_datetime(Time::constant(h, m, 0, 0));
                        if (forward && dt < start) || (!forward && dt > start) {
                            continue;
                        }
                        if let Some(t) = slot_instant(tz, dt)
                            && accept(t)
                        {
                            return Some(t);
                        }
                    }
                }
            }
            date = date.checked_add(step.days()).ok()?;
        }
        None
    }
}

/// The set bits of `bits` below `n`, ascending or descending.
fn ordered(bits: u64, n: i8, ascending: bool) -> Vec<i8> {
    let mut v: Vec<i8> = (0..n).filter(|i| bits & (1 << i) != 0).collect();
    if !ascending {
        v.reverse();
    }
    v
}

/// The instant a local slot time fires at: a time in a gap (spring forward) fires at the end
/// of the gap, a repeated time (fall back) at its first occurrence. The mapping never
/// decreases as the local time grows.
fn slot_instant(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok(),
        AmbiguousOffset::Gap { after, .. } => {
            // `dt` read with the later offset lies before the transition that opens the gap.
            let before_gap = after.to_timestamp(dt).ok()?;
            tz.following(before_gap).next().map(|t| t.timestamp())
        }
    }
}

/// One value of a field: a number or a name.
fn value(s: &str, min: u32, max: u32, names: &[&str], what: &str) -> Result<u32, String> {
    let v = match names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        Some(i) => i as u32 + if names.len() == 12 { 1 } else { 0 },
        None => s
            .parse()
            .map_err(|_| format!("`{s}` is not a valid {what}"))?,
    };
    if v < min || v > max {
        return Err(format!("{what} `{s}` is out of range {min}-{max}"));
    }
    Ok(v)
}

/// A field's values as bits.
fn field(s: &str, min: u32, max: u32, names: &[&str], what: &str) -> Result<u64, String> {
    let mut bits = 0u64;
    for item in s.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, st)) => {
                let st: u32 = st
                    .parse()
                    .ok()
                    .filter(|st| *st > 0)
                    .ok_or_else(|| format!("`{item}`: the step must be a positive number"))?;
                (r, Some(st))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(a, min, max, names, what)?,
                value(b, min, max, names, what)?,
            )
        } else {
            let v = value(range, min, max, names, what)?;
            (v, if step.is_some() { max } else { v })
        };
        if lo > hi {
            return Err(format!("`{item}`: the range runs backwards"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step.unwrap_or(1);
        }
    }
    Ok(bits)
}
