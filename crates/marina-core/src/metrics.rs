//! The control plane's own counters and histograms for `/metrics` (the API
//! renders them with the monitor's per-node gauges).
//!
//! Rules:
//! - Labels are bounded: route templates (never raw paths), methods, status
//!   codes, operation types and results, cluster ids; never secrets.
//! - Base units (seconds); counters only grow for the process's life.
//! - Recording never fails and never blocks on I/O (one short lock each).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Buckets of request and probe latencies, in seconds.
pub const FAST_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Buckets of operation durations, in seconds.
pub const SLOW_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0];

/// A cumulative histogram.
#[derive(Debug, Clone)]
pub struct Histogram {
    pub bounds: &'static [f64],
    /// Observations at or below each bound (not cumulative; the renderer sums).
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    /// `(le, cumulative count)` per bound, then `+Inf`.
    pub fn cumulative(&self) -> Vec<(String, u64)> {
        let mut acc = 0;
        let mut out: Vec<(String, u64)> = self
            .bounds
            .iter()
            .zip(&self.counts)
            .map(|(b, c)| {
                acc += c;
                (b.to_string(), acc)
            })
            .collect();
        out.push(("+Inf".into(), self.count));
        out
    }
}

/// An API request's labels: route template, method, status.
pub type HttpKey = (String, String, u16);
/// A promotion's labels: kind (`failover` | `switchover`), cluster, result.
pub type PromotionKey = (String, String, String);
/// Counters by label set.
pub type Counts<K> = BTreeMap<K, u64>;
/// Histograms by label set.
pub type Histograms<K> = BTreeMap<K, Histogram>;

/// Everything the control plane counts.
#[derive(Default)]
pub struct Metrics {
    /// Requests by (route template, method, status).
    http: Mutex<Counts<HttpKey>>,
    /// Latency by (route template, method).
    http_latency: Mutex<Histograms<(String, String)>>,
    /// Finished operations by (type, result).
    operations: Mutex<BTreeMap<(String, String), u64>>,
    /// Operation durations by type.
    operation_duration: Mutex<BTreeMap<String, Histogram>>,
    /// Probe round trips.
    probe_latency: Mutex<Option<Histogram>>,
    /// Failed probes by cluster.
    probe_failures: Mutex<BTreeMap<String, u64>>,
    /// Promotions (failover / switchover) by (kind, cluster, result).
    promotions: Mutex<Counts<PromotionKey>>,
    /// Promotion durations by kind.
    promotion_duration: Mutex<BTreeMap<String, Histogram>>,
    /// Background-task activations by (task, result).
    background: Mutex<Counts<(String, String)>>,
    /// Background-task activation durations by task.
    background_duration: Mutex<Histograms<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// An answered API request.
    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        *lock(&self.http)
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        lock(&self.http_latency)
            .entry((route.to_string(), method.to_string()))
            .or_insert_with(|| Histogram::new(FAST_BUCKETS))
            .observe(elapsed.as_secs_f64());
    }

    /// A finished operation; failovers and switchovers are also promotions.
    pub fn operation(&self, op_type: &str, cluster_id: Option<&str>, succeeded: bool, elapsed: Duration) {
        let result = if succeeded { "succeeded" } else { "failed" };
        *lock(&self.operations)
            .entry((op_type.to_string(), result.to_string()))
            .or_default() += 1;
        lock(&self.operation_duration)
            .entry(op_type.to_string())
            .or_insert_with(|| Histogram::new(SLOW_BUCKETS))
            .observe(elapsed.as_secs_f64());
        if matches!(op_type, "failover" | "switchover") {
            *lock(&self.promotions)
                .entry((
                    op_type.to_string(),
                    cluster_id.unwrap_or_default().to_string(),
                    result.to_string(),
                ))
                .or_default() += 1;
            lock(&self.promotion_duration)
                .entry(op_type.to_string())
                .or_insert_with(|| Histogram::new(SLOW_BUCKETS))
                .observe(elapsed.as_secs_f64());
        }
    }

    /// A probe's outcome.
    pub fn probe(&self, cluster_id: &str, latency: Option<Duration>) {
        match latency {
            Some(l) => lock(&self.probe_latency)
                .get_or_insert_with(|| Histogram::new(FAST_BUCKETS))
                .observe(l.as_secs_f64()),
            None => *lock(&self.probe_failures).entry(cluster_id.to_string()).or_default() += 1,
        }
    }

    pub fn http_snapshot(&self) -> (Counts<HttpKey>, Histograms<(String, String)>) {
        (lock(&self.http).clone(), lock(&self.http_latency).clone())
    }

    /// A finished background-task activation.
    pub fn background_activation(&self, task: &str, result: &str, elapsed: Duration) {
        *lock(&self.background)
            .entry((task.to_string(), result.to_string()))
            .or_default() += 1;
        lock(&self.background_duration)
            .entry(task.to_string())
            .or_insert_with(|| Histogram::new(FAST_BUCKETS))
            .observe(elapsed.as_secs_f64());
    }

    pub fn background_snapshot(&self) -> (Counts<(String, String)>, Histograms<String>) {
        (lock(&self.background).clone(), lock(&self.background_duration).clone())
    }

    pub fn operations_snapshot(&self) -> (Counts<(String, String)>, Histograms<String>) {
        (lock(&self.operations).clone(), lock(&self.operation_duration).clone())
    }

    pub fn probes_snapshot(&self) -> (Histogram, Counts<String>) {
        (
            lock(&self.probe_latency)
                .clone()
                .unwrap_or_else(|| Histogram::new(FAST_BUCKETS)),
            lock(&self.probe_failures).clone(),
        )
    }

    pub fn promotions_snapshot(&self) -> (Counts<PromotionKey>, Histograms<String>) {
        (lock(&self.promotions).clone(), lock(&self.promotion_duration).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_inf() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(7.0);
        assert_eq!(
            h.cumulative(),
            vec![("0.1".into(), 1), ("1".into(), 2), ("+Inf".into(), 3)]
        );
        assert!((h.sum - 7.55).abs() < 1e-9);
    }

    #[test]
    fn promotions_are_counted_with_operations() {
        let m = Metrics::default();
        m.operation("failover", Some("cl_a"), true, Duration::from_secs(2));
        m.operation("backup", Some("cl_a"), false, Duration::from_secs(2));
        let (ops, durations) = m.operations_snapshot();
        assert_eq!(ops[&("failover".into(), "succeeded".into())], 1);
        assert_eq!(ops[&("backup".into(), "failed".into())], 1);
        assert_eq!(durations["backup"].count, 1);
        let (promotions, _) = m.promotions_snapshot();
        assert_eq!(promotions.len(), 1);
        assert_eq!(promotions[&("failover".into(), "cl_a".into(), "succeeded".into())], 1);
    }
}

/// One node's gauges for `/metrics`, from the store and the monitor's latest
/// probe.
#[derive(Debug, Clone)]
pub struct NodeGauge {
    pub cluster_id: String,
    pub node_id: String,
    pub role: &'static str,
    /// The latest probe succeeded.
    pub up: bool,
    /// From the latest successful probe (none before the first).
    pub read_only: Option<bool>,
    pub lag_seconds: Option<f64>,
    pub connections: Option<u64>,
    /// `Questions` (resets when the node restarts).
    pub queries: Option<u64>,
}

impl crate::Marina {
    /// Every node of every live cluster, all tenants (operator metrics).
    pub async fn node_gauges(&self) -> Result<Vec<NodeGauge>, marina_common::Error> {
        let mut out = Vec::new();
        for n in self.store.all_nodes().await? {
            let h = self.monitor.node(&n.id);
            let p = h.as_ref().and_then(|h| h.probe.as_ref());
            out.push(NodeGauge {
                cluster_id: n.cluster_id.clone(),
                node_id: n.id.clone(),
                role: n.role.as_str(),
                up: h.as_ref().is_some_and(|h| h.reachable),
                read_only: p.map(|p| p.read_only),
                lag_seconds: h.as_ref().and_then(|h| h.lag_seconds()),
                connections: p.map(|p| p.threads_connected),
                queries: p.map(|p| p.questions),
            });
        }
        Ok(out)
    }
}
