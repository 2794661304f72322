//! RFC 3339 UTC timestamps, the only time format Marina stores and serves.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, as an RFC 3339 UTC string with millisecond precision.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

/// Parses an RFC 3339 string.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let s = super::now_rfc3339();
        assert!(s.ends_with('Z'), "{s}");
        assert!(super::parse_rfc3339(&s).is_some());
    }
}
