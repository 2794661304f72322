//! Anti-flapping: the pure decision whether an automatic failover may run.
//!
//! Rules (what orchestrator's "anti-flapping" and MOCO's failover limit are
//! for — stopping a crash loop — without stretching a real outage):
//! - A failure of a primary that served for at least `settle` (the
//!   configuration's `failover.min_interval_secs`) after the previous
//!   failover is failed over **at once**, however many failovers the cluster
//!   had before: each of those primaries served a while, so this is a new,
//!   unrelated failure, and holding it back only keeps the cluster without a
//!   writer.
//! - A **crash loop** is a chain of failovers, each started sooner than
//!   `settle` after the one before it (each new primary died shortly after its
//!   promotion). When the chain ending now already holds `limit` failovers, the
//!   next one is refused: promoting yet another node would most likely kill it
//!   too (a poison query, a full disk, a bad setting), and an operator must look.
//!
//! Incident that taught it: with "at most `limit` per window, none sooner
//! than 30 s after the previous one", a second unrelated crash 10 s after a
//! failover left the cluster without a writer for 19 s.

use std::time::Duration;

use time::OffsetDateTime;

/// Why an automatic failover is refused: the crash loop it would continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashLoop {
    /// Failovers in the chain ending now.
    pub failovers: usize,
    /// Seconds from the chain's first failover to now.
    pub span_secs: i64,
}

impl CrashLoop {
    /// The refusal, as the `failover_refused` event says it.
    pub fn describe(&self, settle: Duration, limit: u32) -> String {
        format!(
            "crash loop: {} failover(s) in {} s, each new primary failing within {} s of its promotion, reached \
             the limit of {limit}; an operator must act",
            self.failovers,
            self.span_secs,
            settle.as_secs()
        )
    }
}

/// Decides whether a failover now would continue a crash loop of `limit`
/// failovers. `previous`: the cluster's recent failovers (not failed), newest
/// first.
pub fn crash_loop(previous: &[OffsetDateTime], now: OffsetDateTime, settle: Duration, limit: u32) -> Option<CrashLoop> {
    let settle = time::Duration::try_from(settle).unwrap_or(time::Duration::MAX);
    let mut later = now;
    let mut chain = 0usize;
    for &t in previous {
        if later - t >= settle {
            break;
        }
        chain += 1;
        later = t;
    }
    (chain > 0 && chain >= limit as usize).then(|| CrashLoop {
        failovers: chain,
        span_secs: (now - later).whole_seconds(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
    }

    const SETTLE: Duration = Duration::from_secs(30);

    #[test]
    fn decisions() {
        // (previous failovers newest first, now, limit, expected chain if refused)
        let cases: &[(&[i64], i64, u32, Option<usize>)] = &[
            // No failover before: always allowed.
            (&[], 1000, 1, None),
            (&[], 1000, 0, None),
            // A second, unrelated crash 10 s after a failover: at once (limit 5).
            (&[990], 1000, 5, None),
            // Five quick failovers in a row, the sixth is refused.
            (&[990, 980, 970, 960, 950], 1000, 5, Some(5)),
            // Four quick ones: the fifth may run.
            (&[990, 980, 970, 960], 1000, 5, None),
            // Many failovers, each primary served a while: never refused.
            (&[900, 800, 700, 600, 500, 400], 1000, 5, None),
            // A loop that ended: the primary after it served 60 s.
            (&[940, 935, 930, 925, 920], 1000, 5, None),
            // limit 1: the failure right after a failover is refused.
            (&[995], 1000, 1, Some(1)),
            // Exactly `settle` later is healthy enough.
            (&[970], 1000, 1, None),
            // A quick chain interrupted by a long gap counts only its recent part.
            (&[995, 990, 900, 895, 890], 1000, 3, None),
            (&[995, 990, 900, 895, 890], 1000, 2, Some(2)),
        ];
        for (previous, now, limit, want) in cases {
            let previous: Vec<_> = previous.iter().map(|&s| at(s)).collect();
            let got = crash_loop(&previous, at(*now), SETTLE, *limit).map(|l| l.failovers);
            assert_eq!(got, *want, "previous {previous:?}, limit {limit}");
        }
    }

    #[test]
    fn the_refusal_names_the_loop() {
        let l = crash_loop(&[at(995), at(990)], at(1000), SETTLE, 2).unwrap();
        assert_eq!(l.span_secs, 10);
        let msg = l.describe(SETTLE, 2);
        assert!(msg.starts_with("crash loop: 2 failover(s) in 10 s"), "{msg}");
        assert!(msg.contains("within 30 s") && msg.contains("limit of 2"), "{msg}");
    }
}
