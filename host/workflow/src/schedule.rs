//! When a schedule fires: the next (and previous) session time.
//!
//! Times are computed in the workflow's time zone, so `daily: "07:00"` in
//! Asia/Tokyo is 07:00 in Tokyo whatever the server's clock says. A local
//! time that a daylight-saving change skips fires just after the change.

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::definition::ScheduleSpec;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: Tz,
    rule: Rule,
    /// Skip a time while the previous session still runs.
    pub skip_on_overtime: bool,
}

#[derive(Debug, Clone)]
enum Rule {
    Cron(Box<croner::Cron>),
    Daily(NaiveTime),
    /// Seconds after each hour.
    Hourly(u32),
    /// Every N minutes since midnight UTC of the epoch.
    Minutes(u32),
}

impl Schedule {
    /// Check and parse a spec.
    ///
    /// # Errors
    /// A message naming the key that is wrong.
    pub fn parse(spec: &ScheduleSpec) -> Result<Schedule, String> {
        let tz: Tz = spec
            .timezone
            .parse()
            .map_err(|_| format!("unknown time zone {:?}", spec.timezone))?;
        let mut rules = Vec::new();
        if let Some(cron) = &spec.cron {
            let parsed =
                croner::Cron::from_str(cron).map_err(|e| format!("cron: {cron:?}: {e}"))?;
            rules.push(Rule::Cron(Box::new(parsed)));
        }
        if let Some(daily) = &spec.daily {
            let time = NaiveTime::parse_from_str(daily, "%H:%M:%S")
                .or_else(|_| NaiveTime::parse_from_str(daily, "%H:%M"))
                .map_err(|_| format!("daily: {daily:?} is not HH:MM or HH:MM:SS"))?;
            rules.push(Rule::Daily(time));
        }
        if let Some(hourly) = &spec.hourly {
            let mut parts = hourly.split(':');
            let parse = |p: Option<&str>| -> Result<u32, String> {
                match p {
                    None => Ok(0),
                    Some(p) => p
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n < 60)
                        .ok_or_else(|| format!("hourly: {hourly:?} is not MM or MM:SS")),
                }
            };
            let minutes = parse(parts.next())?;
            let seconds = parse(parts.next())?;
            rules.push(Rule::Hourly(minutes * 60 + seconds));
        }
        if let Some(n) = spec.minutes_interval {
            if n == 0 {
                return Err("minutes_interval: must be at least 1".into());
            }
            rules.push(Rule::Minutes(n));
        }
        if rules.len() != 1 {
            return Err("give exactly one of cron, daily, hourly, minutes_interval".into());
        }
        Ok(Schedule {
            tz,
            rule: rules.remove(0),
            skip_on_overtime: spec.skip_on_overtime,
        })
    }

    /// The first session time strictly after `after_ms` (ms since the epoch).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after = Utc.timestamp_millis_opt(after_ms).single()?;
        let local = after.with_timezone(&self.tz);
        let next = match &self.rule {
            Rule::Cron(cron) => cron
                .find_next_occurrence(&local, false)
                .ok()?
                .with_timezone(&Utc),
            Rule::Daily(time) => {
                let mut day = local.date_naive();
                loop {
                    let t = self.at_local(day, *time)?;
                    if t > after {
                        break t;
                    }
                    day = day.succ_opt()?;
                }
            }
            Rule::Hourly(offset) => {
                let hour = local
                    .with_minute(0)?
                    .with_second(0)?
                    .with_nanosecond(0)?
                    .with_timezone(&Utc);
                let mut t = hour + Duration::seconds(i64::from(*offset));
                while t <= after {
                    t += Duration::hours(1);
                }
                t
            }
            Rule::Minutes(n) => {
                let step = i64::from(*n) * 60_000;
                let next = (after_ms.div_euclid(step) + 1) * step;
                return Some(next);
            }
        };
        Some(next.timestamp_millis())
    }

    /// The last session time strictly before `before_ms`.
    pub fn previous_before(&self, before_ms: i64) -> Option<i64> {
        // Step back far enough to see at least one firing, then walk forward.
        let mut span = 3_600_000i64;
        loop {
            let mut t = self.next_after(before_ms - span - 1)?;
            if t < before_ms {
                let mut last = t;
                loop {
                    t = self.next_after(t)?;
                    if t >= before_ms {
                        return Some(last);
                    }
                    last = t;
                }
            }
            if span > 400 * 86_400_000 {
                return None;
            }
            span *= 4;
        }
    }

    fn at_local(&self, day: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
        let naive = day.and_time(time);
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
            // Skipped by a daylight-saving change: fire when the clock resumes.
            LocalResult::None => (1..=4)
                .filter_map(|h| {
                    self.tz
                        .from_local_datetime(&(naive + Duration::minutes(30 * h)))
                        .earliest()
                })
                .next()
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(f: impl FnOnce(&mut ScheduleSpec)) -> Schedule {
        let mut s = ScheduleSpec {
            cron: None,
            daily: None,
            hourly: None,
            minutes_interval: None,
            skip_on_overtime: false,
            timezone: "Asia/Tokyo".into(),
        };
        f(&mut s);
        Schedule::parse(&s).unwrap()
    }

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn daily_in_the_workflow_time_zone() {
        let s = spec(|s| s.daily = Some("07:00".into()));
        // 2026-12-01T22:00Z is 07:00 on Dec 2 in Tokyo.
        assert_eq!(
            s.next_after(ms("2026-12-01T21:00:00Z")),
            Some(ms("2026-12-01T22:00:00Z"))
        );
        assert_eq!(
            s.next_after(ms("2026-12-01T22:00:00Z")),
            Some(ms("2026-12-02T22:00:00Z"))
        );
        assert_eq!(
            s.previous_before(ms("2026-12-02T22:00:00Z")),
            Some(ms("2026-12-01T22:00:00Z"))
        );
    }

    #[test]
    fn cron_hourly_and_minutes() {
        let s = spec(|s| s.cron = Some("30 9 * * 1-5".into()));
        // Friday 2026-12-04 09:30 JST, then Monday 12-07.
        assert_eq!(
            s.next_after(ms("2026-12-04T00:00:00Z")),
            Some(ms("2026-12-04T00:30:00Z"))
        );
        assert_eq!(
            s.next_after(ms("2026-12-04T00:30:00Z")),
            Some(ms("2026-12-07T00:30:00Z"))
        );
        let h = spec(|s| s.hourly = Some("15:00".into()));
        assert_eq!(
            h.next_after(ms("2026-12-04T00:20:00Z")),
            Some(ms("2026-12-04T01:15:00Z"))
        );
        let m = spec(|s| s.minutes_interval = Some(5));
        assert_eq!(
            m.next_after(ms("2026-12-04T00:07:00Z")),
            Some(ms("2026-12-04T00:10:00Z"))
        );
    }

    #[test]
    fn daylight_saving_gap_fires_after_the_change() {
        let s = spec(|s| {
            s.timezone = "Europe/Berlin".into();
            s.daily = Some("02:30".into());
        });
        // 2026-03-29: Berlin jumps from 02:00 to 03:00 (01:00Z).
        let t = s.next_after(ms("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(t, ms("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn exactly_one_rule() {
        let mut s = ScheduleSpec {
            cron: Some("* * * * *".into()),
            daily: Some("07:00".into()),
            hourly: None,
            minutes_interval: None,
            skip_on_overtime: false,
            timezone: "UTC".into(),
        };
        assert!(Schedule::parse(&s).is_err());
        s.cron = None;
        s.daily = Some("7 o'clock".into());
        assert!(Schedule::parse(&s).unwrap_err().contains("daily"));
    }
}
