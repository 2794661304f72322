//! RFC 3339 UTC timestamps, the only time format Marina stores and serves.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Fixed-width RFC 3339 with milliseconds, so stored times sort as strings.
const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Now, as an RFC 3339 UTC string with millisecond precision (fixed width).
pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// A time as a fixed-width RFC 3339 UTC string.
pub fn format_rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(FORMAT).unwrap_or_default()
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
        assert_eq!(s.len(), "2026-11-25T21:34:54.120Z".len(), "{s}");
        let t = time::macros::datetime!(2026-01-02 03:04:05.1 UTC);
        assert_eq!(super::format_rfc3339(t), "2026-01-02T03:04:05.100Z");
    }
}
