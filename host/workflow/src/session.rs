//! The variables a session gives its tasks: `${session_date}` and friends.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::json;

use crate::template::Params;

/// An instant (ms since the epoch) as RFC 3339 in `tz`.
pub fn format_time(ms: i64, tz: &str) -> String {
    let tz: Tz = tz.parse().unwrap_or(Tz::UTC);
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.with_timezone(&tz).to_rfc3339(),
        None => ms.to_string(),
    }
}

/// The session variables for a session at `time` in `tz`; `last` is the
/// previous session time (the schedule's, or the last one run).
pub fn session_params(time: i64, last: Option<i64>, tz: &str) -> Params {
    let zone: Tz = tz.parse().unwrap_or(Tz::UTC);
    let mut p = Params::new();
    let mut put = |prefix: &str, ms: i64| {
        let Some(t): Option<DateTime<Tz>> = Utc
            .timestamp_millis_opt(ms)
            .single()
            .map(|t| t.with_timezone(&zone))
        else {
            return;
        };
        p.insert(format!("{prefix}_time"), json!(t.to_rfc3339()));
        p.insert(
            format!("{prefix}_date"),
            json!(t.format("%Y-%m-%d").to_string()),
        );
        p.insert(
            format!("{prefix}_date_compact"),
            json!(t.format("%Y%m%d").to_string()),
        );
        p.insert(
            format!("{prefix}_local_time"),
            json!(t.format("%Y-%m-%d %H:%M:%S").to_string()),
        );
        p.insert(format!("{prefix}_unixtime"), json!(ms / 1000));
    };
    put("session", time);
    put("last_session", last.unwrap_or(time));
    p.insert("session_tz_offset".into(), json!(offset(time, zone)));
    p.insert("timezone".into(), json!(tz));
    p
}

fn offset(ms: i64, zone: Tz) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.with_timezone(&zone).format("%z").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_in_the_workflow_zone() {
        // 2026-12-01T22:00Z is Dec 2, 07:00 in Tokyo.
        let t = 1_796_162_400_000;
        let p = session_params(t, None, "Asia/Tokyo");
        assert_eq!(p["session_date"], "2026-12-02");
        assert_eq!(p["session_time"], "2026-12-02T07:00:00+09:00");
        assert_eq!(p["session_date_compact"], "20261202");
        assert_eq!(p["session_tz_offset"], "+0900");
        assert_eq!(p["last_session_date"], "2026-12-02");
        let p = session_params(t, Some(t - 86_400_000), "Asia/Tokyo");
        assert_eq!(p["last_session_date"], "2026-12-01");
    }
}
