//! The last 15 minutes of each node, kept in memory for the console's charts:
//! queries per second, connections and replication lag, one sample per
//! `STEP` at most (the monitor probes more often).
//!
//! Rules: a sample is recorded from a probe's outcome (a failed probe records
//! `up: false` and no values); queries per second come from the growth of
//! `Questions` between two samples (none after a restart, when it shrinks);
//! samples older than `WINDOW` and nodes no longer probed are dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use marina_engine::probe::Probe;
use serde::Serialize;
use utoipa::ToSchema;

/// How far back the history goes.
pub const WINDOW_SECS: f64 = 15.0 * 60.0;
/// The shortest time between two samples of a node.
pub const STEP_SECS: f64 = 2.0;

/// One point of a node's history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Sample {
    /// Unix time, seconds.
    pub t: f64,
    pub up: bool,
    pub queries_per_second: Option<f64>,
    pub connections: Option<u64>,
    pub lag_seconds: Option<f64>,
}

#[derive(Default)]
struct NodeHistory {
    samples: VecDeque<Sample>,
    /// `Questions` and when, at the last sample with a probe.
    last_questions: Option<(u64, f64)>,
}

/// Every node's history.
#[derive(Default)]
pub struct History {
    nodes: Mutex<HashMap<String, NodeHistory>>,
}

impl History {
    /// Records a probe outcome at unix time `t` (skipped when the node's last
    /// sample is more recent than `STEP_SECS`).
    pub fn record(&self, node_id: &str, t: f64, probe: Option<&Probe>) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let h = nodes.entry(node_id.to_string()).or_default();
        if h.samples.back().is_some_and(|s| t - s.t < STEP_SECS) {
            return;
        }
        let sample = match probe {
            Some(p) => {
                let qps = h
                    .last_questions
                    .filter(|(q, at)| p.questions >= *q && t > *at)
                    .map(|(q, at)| (p.questions - q) as f64 / (t - at));
                h.last_questions = Some((p.questions, t));
                Sample {
                    t,
                    up: true,
                    queries_per_second: qps,
                    connections: Some(p.threads_connected),
                    lag_seconds: p.replica.as_ref().and_then(|r| r.seconds_behind).map(|s| s as f64),
                }
            }
            None => {
                h.last_questions = None;
                Sample {
                    t,
                    up: false,
                    queries_per_second: None,
                    connections: None,
                    lag_seconds: None,
                }
            }
        };
        h.samples.push_back(sample);
        while h.samples.front().is_some_and(|s| t - s.t > WINDOW_SECS) {
            h.samples.pop_front();
        }
    }

    /// A node's samples, oldest first.
    pub fn samples(&self, node_id: &str) -> Vec<Sample> {
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(node_id)
            .map(|h| h.samples.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets nodes that are no longer probed.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| keep(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(questions: u64) -> Probe {
        Probe {
            questions,
            threads_connected: 3,
            ..Probe::default()
        }
    }

    #[test]
    fn rates_come_from_growth_and_samples_are_spaced_and_windowed() {
        let h = History::default();
        h.record("n", 100.0, Some(&probe(1000)));
        h.record("n", 101.0, Some(&probe(1100))); // too soon: skipped
        h.record("n", 104.0, Some(&probe(1400)));
        h.record("n", 106.0, None);
        h.record("n", 108.0, Some(&probe(10))); // after a restart: no rate
        h.record("n", 110.0, Some(&probe(30)));
        let s = h.samples("n");
        let qps: Vec<Option<f64>> = s.iter().map(|s| s.queries_per_second).collect();
        assert_eq!(qps, vec![None, Some(100.0), None, None, Some(10.0)]);
        assert!(!s[2].up && s[2].connections.is_none());
        assert_eq!(s[1].connections, Some(3));
        h.record("n", 110.0 + WINDOW_SECS + 1.0, Some(&probe(40)));
        assert_eq!(h.samples("n").len(), 1);
        h.retain(|id| id != "n");
        assert!(h.samples("n").is_empty());
    }
}
