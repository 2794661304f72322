//! Failure detection, as pure functions of what the monitor observed.
//!
//! Rule (orchestrator's "holistic" detection, made fast): the primary is failed
//! only when
//! 1. Marina's own probes of it have failed continuously for at least
//!    `failure_window`, **and**
//! 2. every reachable replica agrees — its IO thread is not connected, or it has
//!    heard nothing from the primary (no event, no heartbeat; heartbeats come
//!    every 0.1 s) for at least `witness_silence`.
//!
//! A primary Marina cannot reach while some replica still hears it is *not*
//! failed (Marina's own path is the problem). With no reachable replica there is
//! no witness and no candidate: nothing to fail over to.
//!
//! A primary whose process the runtime *saw exit* (a pidfd turned readable)
//! needs no window: it is failed as soon as every reachable replica has lost
//! its connection (which the kernel closes at the exit) — until then it is
//! suspect, and the monitor probes again within milliseconds.

use std::time::Duration;

/// What the monitor knows about one node at evaluation time.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Whether the latest probe succeeded.
    pub reachable: bool,
    /// How long probes have been failing continuously (zero when reachable).
    pub failing_for: Duration,
    /// For replicas: whether the IO thread is connected to its primary.
    pub io_connected: bool,
    /// For replicas: how long since it last received anything from its primary.
    pub silent_for: Duration,
    /// For the primary: the runtime saw its process exit.
    pub exited: bool,
}

/// The verdict on a cluster's primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrimaryVerdict {
    /// Reachable.
    Healthy,
    /// Probes fail, but not for the whole window yet.
    Suspect { reason: String },
    /// Failed: both rules hold. `evidence` lists what was seen.
    Failed { evidence: String },
    /// Probes fail, but replicas still hear the primary (or none can witness):
    /// no failover. `reason` says why.
    NotFailed { reason: String },
}

/// Applies the detection rule.
pub fn assess_primary(
    primary: &Observed,
    replicas: &[(String, Observed)],
    failure_window: Duration,
    witness_silence: Duration,
) -> PrimaryVerdict {
    if primary.reachable {
        return PrimaryVerdict::Healthy;
    }
    if primary.exited {
        return assess_exited(replicas);
    }
    if primary.failing_for < failure_window {
        return PrimaryVerdict::Suspect {
            reason: format!("primary unreachable for {} ms", primary.failing_for.as_millis()),
        };
    }
    let witnesses: Vec<&(String, Observed)> = replicas.iter().filter(|(_, o)| o.reachable).collect();
    if witnesses.is_empty() {
        return PrimaryVerdict::NotFailed {
            reason: "primary unreachable, but no replica is reachable to confirm it or take over".into(),
        };
    }
    let still_hearing: Vec<&str> = witnesses
        .iter()
        .filter(|(_, o)| o.io_connected && o.silent_for < witness_silence)
        .map(|(id, _)| id.as_str())
        .collect();
    if !still_hearing.is_empty() {
        return PrimaryVerdict::NotFailed {
            reason: format!(
                "primary unreachable from Marina for {} ms, but replica(s) {} still receive its events; not failing over",
                primary.failing_for.as_millis(),
                still_hearing.join(", ")
            ),
        };
    }
    let evidence: Vec<String> = witnesses
        .iter()
        .map(|(id, o)| {
            if o.io_connected {
                format!("{id} heard nothing for {} ms", o.silent_for.as_millis())
            } else {
                format!("{id} lost its connection")
            }
        })
        .collect();
    PrimaryVerdict::Failed {
        evidence: format!(
            "primary unreachable for {} ms; replicas agree: {}",
            primary.failing_for.as_millis(),
            evidence.join("; ")
        ),
    }
}

/// The rule for a primary whose process exited: the reachable replicas must
/// all have lost their connection to it.
fn assess_exited(replicas: &[(String, Observed)]) -> PrimaryVerdict {
    let witnesses: Vec<&str> = replicas
        .iter()
        .filter(|(_, o)| o.reachable)
        .map(|(id, _)| id.as_str())
        .collect();
    if witnesses.is_empty() {
        return PrimaryVerdict::NotFailed {
            reason: "the primary's process exited, but no replica is reachable to take over".into(),
        };
    }
    let connected: Vec<&str> = replicas
        .iter()
        .filter(|(_, o)| o.reachable && o.io_connected)
        .map(|(id, _)| id.as_str())
        .collect();
    if !connected.is_empty() {
        return PrimaryVerdict::Suspect {
            reason: format!(
                "the primary's process exited; replica(s) {} have not yet lost its connection",
                connected.join(", ")
            ),
        };
    }
    PrimaryVerdict::Failed {
        evidence: format!(
            "the primary's process exited; replicas agree: {} lost their connection",
            witnesses.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_millis(750);
    const S: Duration = Duration::from_millis(500);

    fn down(ms: u64) -> Observed {
        Observed {
            reachable: false,
            failing_for: Duration::from_millis(ms),
            io_connected: false,
            silent_for: Duration::ZERO,
            exited: false,
        }
    }

    fn exited(ms: u64) -> Observed {
        Observed {
            exited: true,
            ..down(ms)
        }
    }

    fn replica(io: bool, silent_ms: u64) -> Observed {
        Observed {
            reachable: true,
            failing_for: Duration::ZERO,
            io_connected: io,
            silent_for: Duration::from_millis(silent_ms),
            exited: false,
        }
    }

    #[test]
    fn an_exited_process_needs_no_window() {
        let r = |id: &str, o: Observed| (id.to_string(), o);
        // (primary, replicas, expected verdict kind)
        type Case = (Observed, Vec<(String, Observed)>, &'static str);
        let cases: Vec<Case> = vec![
            // Lost by every replica: failed at once, 5 ms after the exit.
            (
                exited(5),
                vec![r("r1", replica(false, 0)), r("r2", replica(false, 0))],
                "failed",
            ),
            // One replica has not noticed yet: suspect (probed again soon).
            (
                exited(5),
                vec![r("r1", replica(false, 0)), r("r2", replica(true, 5))],
                "suspect",
            ),
            // An unreachable replica is no witness; the other suffices.
            (
                exited(5),
                vec![r("r1", down(5000)), r("r2", replica(false, 0))],
                "failed",
            ),
            // No witness at all: not failed.
            (exited(5), vec![r("r1", down(5000))], "not_failed"),
            // Reachable after all (restarted): healthy.
            (
                Observed {
                    reachable: true,
                    ..exited(0)
                },
                vec![r("r1", replica(false, 0))],
                "healthy",
            ),
            // Not known to have exited: the window applies.
            (down(5), vec![r("r1", replica(false, 0))], "suspect"),
        ];
        for (primary, replicas, want) in cases {
            let got = match assess_primary(&primary, &replicas, W, S) {
                PrimaryVerdict::Healthy => "healthy",
                PrimaryVerdict::Suspect { .. } => "suspect",
                PrimaryVerdict::Failed { .. } => "failed",
                PrimaryVerdict::NotFailed { .. } => "not_failed",
            };
            assert_eq!(got, want, "{primary:?} {replicas:?}");
        }
    }

    #[test]
    fn healthy_and_suspect() {
        let up = Observed {
            reachable: true,
            ..down(0)
        };
        assert_eq!(assess_primary(&up, &[], W, S), PrimaryVerdict::Healthy);
        assert!(matches!(
            assess_primary(&down(300), &[("r".into(), replica(false, 0))], W, S),
            PrimaryVerdict::Suspect { .. }
        ));
    }

    #[test]
    fn failed_only_when_replicas_agree() {
        let lost = [
            ("r1".to_string(), replica(false, 0)),
            ("r2".to_string(), replica(true, 900)),
        ];
        match assess_primary(&down(800), &lost, W, S) {
            PrimaryVerdict::Failed { evidence } => {
                assert!(evidence.contains("r1 lost its connection"), "{evidence}");
                assert!(evidence.contains("r2 heard nothing for 900 ms"), "{evidence}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_replica_still_hearing_the_primary_prevents_failover() {
        let mixed = [
            ("r1".to_string(), replica(false, 0)),
            ("r2".to_string(), replica(true, 100)),
        ];
        match assess_primary(&down(5000), &mixed, W, S) {
            PrimaryVerdict::NotFailed { reason } => assert!(reason.contains("r2 still receive"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_witness_no_failover() {
        let gone = [("r1".to_string(), down(5000))];
        assert!(matches!(
            assess_primary(&down(5000), &gone, W, S),
            PrimaryVerdict::NotFailed { .. }
        ));
        assert!(matches!(
            assess_primary(&down(5000), &[], W, S),
            PrimaryVerdict::NotFailed { .. }
        ));
    }
}
