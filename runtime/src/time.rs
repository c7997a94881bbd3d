//! Timestamps as docker writes them: RFC 3339 with nanoseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ` for a moment.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = kiln_store::rfc3339(d.as_secs() as i64);
    format!("{}.{:09}Z", secs.trim_end_matches('Z'), d.subsec_nanos())
}

pub fn now() -> String {
    rfc3339_nanos(SystemTime::now())
}

/// Seconds since the epoch of an RFC 3339 timestamp (0 if unparsable).
pub fn seconds(ts: &str) -> i64 {
    kiln_store::time::parse_rfc3339(ts).unwrap_or(0)
}

/// docker's "Up 5 seconds" / "3 minutes ago" wording for a duration.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86_400),
        1_209_600..=5_183_999 => format!("{} weeks", s / 604_800),
        5_184_000..=63_071_999 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nanosecond_timestamps() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        assert_eq!(super::rfc3339_nanos(t), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(
            super::seconds("2023-11-14T22:13:20.000000005Z"),
            1_700_000_000
        );
    }
}
