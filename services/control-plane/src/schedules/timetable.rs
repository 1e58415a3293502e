//! When a schedule's runs are due: a five-field cron expression (minute hour day-of-month month
//! day-of-week, parsed by `croner`) read in an IANA time zone. No seconds field: one run a
//! minute is the most a schedule asks for.

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use frameos_core::{Error, ErrorCode};

/// The longest expression accepted (the column's width).
const MAX_EXPRESSION: usize = 128;

/// A parsed expression in its time zone.
#[derive(Debug, Clone)]
pub struct Timetable {
    cron: Cron,
    zone: Tz,
}

impl Timetable {
    /// `expression` in `timezone` (empty: UTC); a client's mistake is `validation_failed`
    /// naming the field.
    pub fn parse(expression: &str, timezone: &str) -> Result<Timetable, Error> {
        let invalid = |message: String| Error::new(ErrorCode::ValidationFailed, message);
        let expression = expression.trim();
        if expression.is_empty() || expression.len() > MAX_EXPRESSION {
            return Err(invalid(format!(
                "cron: 1 to {MAX_EXPRESSION} characters, five fields (minute hour day-of-month \
                 month day-of-week)"
            )));
        }
        if expression.split_whitespace().count() != 5 && !expression.starts_with('@') {
            return Err(invalid(format!(
                "cron: {expression:?} must have five fields (minute hour day-of-month month \
                 day-of-week)"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| invalid(format!("cron: {expression:?} is not valid: {e}")))?;
        let zone = match timezone.trim() {
            "" => Tz::UTC,
            name => name.parse::<Tz>().map_err(|_| {
                invalid(format!(
                    "timezone: {name:?} is not an IANA time zone (e.g. \"Europe/Paris\")"
                ))
            })?,
        };
        let timetable = Timetable { cron, zone };
        // An expression that never matches (`0 0 31 2 *`) would leave a schedule that never runs.
        if timetable.next_after(Utc::now()).is_none() {
            return Err(invalid(format!("cron: {expression:?} never matches")));
        }
        Ok(timetable)
    }

    /// The time zone's name, as stored.
    pub fn zone(&self) -> &str {
        self.zone.name()
    }

    /// The first tick strictly after `t`, on a whole minute (croner keeps the start's fraction
    /// of a second, so it is dropped first).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.trunc_subsecs(0).with_timezone(&self.zone), false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn every_five_minutes_in_utc() {
        let t = Timetable::parse("*/5 * * * *", "").unwrap();
        assert_eq!(t.zone(), "UTC");
        assert_eq!(
            t.next_after(at(2026, 11, 30, 10, 2)),
            Some(at(2026, 11, 30, 10, 5))
        );
        // On the minute, whatever the fraction of a second it is asked at.
        let asked = at(2026, 11, 30, 10, 2) + chrono::Duration::milliseconds(934);
        assert_eq!(t.next_after(asked), Some(at(2026, 11, 30, 10, 5)));
        // Strictly after: a tick is never due twice.
        assert_eq!(
            t.next_after(at(2026, 11, 30, 10, 5)),
            Some(at(2026, 11, 30, 10, 10))
        );
    }

    #[test]
    fn macros_are_five_field_shorthands() {
        let t = Timetable::parse("@hourly", "").unwrap();
        assert_eq!(
            t.next_after(at(2026, 11, 30, 10, 2)),
            Some(at(2026, 11, 30, 11, 0))
        );
    }

    #[test]
    fn read_in_the_given_zone() {
        // 09:00 in Kolkata (UTC+05:30) is 03:30 UTC.
        let t = Timetable::parse("0 9 * * *", "Asia/Kolkata").unwrap();
        assert_eq!(
            t.next_after(at(2026, 11, 30, 0, 0)),
            Some(at(2026, 11, 30, 3, 30))
        );
        // Across a daylight-saving change: 09:00 in Paris is 08:00 UTC in March, 07:00 in April.
        let paris = Timetable::parse("0 9 * * *", "Europe/Paris").unwrap();
        assert_eq!(
            paris.next_after(at(2026, 3, 28, 12, 0)),
            Some(at(2026, 3, 29, 7, 0))
        );
    }

    #[test]
    fn mistakes_are_validation_errors_naming_the_field() {
        for (cron, zone, needle) in [
            ("", "", "cron"),
            ("* * * *", "", "five fields"),
            ("0 * * * * *", "", "five fields"),
            ("61 * * * *", "", "not valid"),
            ("0 0 31 2 *", "", "never matches"),
            ("* * * * *", "Mars/Olympus", "timezone"),
        ] {
            let err = Timetable::parse(cron, zone).unwrap_err();
            assert_eq!(err.code, ErrorCode::ValidationFailed, "{cron}");
            assert!(err.message.contains(needle), "{cron}: {}", err.message);
        }
    }
}
