//! Refused connections: turns the data path's cumulative counts (by target and
//! source) into per-cluster counters for `/metrics` and one log line per
//! target, source and second — never one per connection, so a scan cannot
//! flood the log.
//!
//! Rules: the reporter runs every `REPORT_EVERY`; it only reads the data path
//! and the plan last applied; a target no longer in the plan (a deleted
//! cluster) is counted under `cluster_id` `unknown`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddrV4};
use std::sync::Mutex;
use std::time::Duration;

use crate::Marina;

/// How often refusals are collected and logged.
pub(crate) const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Counters of refused connections.
#[derive(Default)]
pub struct RefusalLedger {
    /// The data path's totals at the last report.
    seen: Mutex<HashMap<(SocketAddrV4, IpAddr), u64>>,
    /// (cluster id, `writer` | `reader` | `node`) → refused attempts.
    by_cluster: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl RefusalLedger {
    /// (cluster id, target kind, count), sorted.
    pub fn snapshot(&self) -> Vec<(String, &'static str, u64)> {
        self.by_cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|((c, k), n)| (c.clone(), *k, *n))
            .collect()
    }
}

impl Marina {
    /// Connections admitted per (cluster id, `writer` | `reader`), summed
    /// over the data path's cumulative counts; an endpoint no longer in the
    /// plan is counted under `unknown`.
    pub async fn accepted_connections(&self) -> Vec<(String, &'static str, u64)> {
        let counts = match self.datapath.accepted().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read accepted connections");
                return Vec::new();
            }
        };
        let owners = self.endpoint_owners();
        let mut by_cluster: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for (target, n) in counts {
            let key = owners
                .get(&target)
                .cloned()
                .unwrap_or_else(|| ("unknown".to_string(), "endpoint"));
            *by_cluster.entry(key).or_default() += n;
        }
        by_cluster.into_iter().map(|((c, k), n)| (c, k, n)).collect()
    }

    /// Which cluster and endpoint kind each applied address belongs to.
    fn endpoint_owners(&self) -> HashMap<SocketAddrV4, (String, &'static str)> {
        self.endpoints_applied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|a| a.owners.clone())
            .unwrap_or_default()
    }
}

/// Collects new refusals, logs them and adds them to the ledger.
/// Returns how many new refusals it counted.
pub async fn report_once(app: &Marina) -> u64 {
    let counts = match app.datapath.refusals().await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read refused connections");
            return 0;
        }
    };
    let mut total = 0;
    let owners = app.endpoint_owners();
    let mut seen = app.refusals.seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut by_cluster = app.refusals.by_cluster.lock().unwrap_or_else(|e| e.into_inner());
    for c in counts {
        let before = seen.insert((c.target, c.source), c.count).unwrap_or(0);
        let new = c.count.saturating_sub(before);
        if new == 0 {
            continue;
        }
        let (cluster_id, kind) = owners
            .get(&c.target)
            .cloned()
            .unwrap_or_else(|| ("unknown".to_string(), "endpoint"));
        if kind == "node" {
            tracing::warn!(%cluster_id, source = %c.source, target = %c.target, attempts = new,
                "direct connection to a node port dropped (only Marina and the cluster's nodes may connect)");
        } else {
            tracing::warn!(%cluster_id, endpoint = kind, source = %c.source, target = %c.target, refused = new,
                "endpoint connection refused by the cluster's security groups");
        }
        *by_cluster.entry((cluster_id, kind)).or_default() += new;
        total += new;
    }
    total
}
