//! The control plane's background tasks, each a thin adapter from the
//! driver's activation to its module's one-pass function.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use marina_common::Error;
use marina_engine::probe::ProbeConn;
use serde_json::{Value, json};

use super::{BackgroundTask, Spec};
use crate::{Marina, audit, backup_schedule, failpoint, refusals};

/// Every task, in the order they start.
pub(super) fn all(app: &Marina) -> Vec<Spec> {
    vec![
        Spec {
            name: "operation_worker",
            description: "claims unfinished operations (new ones, and those a crashed process left) and runs their steps",
            period: Duration::from_secs(1),
            signal: Some(|m| &m.work),
            task: Arc::new(Worker),
        },
        Spec {
            name: "supervisor",
            description: "restarts dead nodes, removes orphans and applies the endpoint plan",
            period: Duration::from_millis(app.config.nodes.reconcile_interval_ms),
            signal: Some(|m| &m.reconcile),
            task: Arc::new(Supervisor),
        },
        Spec {
            name: "monitor",
            description: "probes every node, then evaluates each cluster (failover, fencing, rejoin, statuses)",
            period: Duration::from_millis(app.config.monitor.interval_ms),
            signal: Some(|m| &m.probe_now),
            task: Arc::new(Monitor::default()),
        },
        Spec {
            name: "refusal_reporter",
            description: "counts and logs connections refused at endpoints and node ports",
            period: refusals::REPORT_EVERY,
            signal: None,
            task: Arc::new(RefusalReporter),
        },
        Spec {
            name: "audit_pruner",
            description: "removes audit events past the retention",
            period: audit::PRUNE_EVERY,
            signal: None,
            task: Arc::new(AuditPruner),
        },
        Spec {
            name: "backup_scheduler",
            description: "takes scheduled backups when due and prunes those past retention",
            period: backup_schedule::SCHEDULE_EVERY,
            signal: None,
            task: Arc::new(BackupScheduler),
        },
        Spec {
            name: "agent_heartbeat",
            description: "calls every host agent (mutual TLS): an answer makes its host active, silence marks it down",
            period: Duration::from_millis(app.config.hosts.heartbeat_ms),
            signal: None,
            task: Arc::new(AgentHeartbeat),
        },
        Spec {
            name: "drainer",
            description: "moves the nodes of drained hosts, and of hosts down for hosts.replace_after_secs, to other hosts",
            period: Duration::from_secs(1),
            signal: None,
            task: Arc::new(Drainer),
        },
        Spec {
            name: "binlog_archiver",
            description: "rotates and archives each archiving cluster's primary binlog",
            period: Duration::from_secs(1),
            signal: None,
            task: Arc::new(BinlogArchiver),
        },
    ]
}

/// Panics at the start of an activation when the test panic point
/// `task:<name>` is armed.
fn panic_point(name: &str) {
    failpoint::panic_point(&format!("task:{name}"));
}

struct Worker;

#[async_trait]
impl BackgroundTask for Worker {
    async fn activate(&self, app: &Arc<Marina>) -> Result<Value, Error> {
        panic_point("operation_worker");
        let (started, running) = crate::operations::worker::claim_once(app).await?;
        Ok(json!({"started": started, "running": running}))
    }
}

struct Supervisor;

#[async_trait]
impl BackgroundTask for Supervisor {
    async fn activate(&self, app: &Arc<Marina>) -> Result<Value, Error> {
        panic_point("supervisor");
        crate::supervisor::reconcile_once(app).await?;
        Ok(json!({}))
    }
}

/// The monitor keeps its probe connections between activations.
#[derive(Default)]
struct Monitor {
    conns: tokio::sync::Mutex<HashMap<String, ProbeConn>>,
}

#[async_trait]
impl BackgroundTask for Monitor {
    async fn activate(&self, app: &Arc<Marina>) -> Result<Value, Error> {
        panic_point("monitor");
        let mut conns = self.conns.lock().await;
        let report = crate::monitor::tick(app, &mut conns).await?;
        Ok(serde_json::to_value(report).unwrap_or_default())
    }
}

struct RefusalReporter;

#[async_trait]
impl BackgroundTask for RefusalReporter {
    async fn activate(&self, app: &Arc<Marina>) -> Result<Value, Error> {
        panic_point("refusal_reporter");
        Ok(json!({"new_refusals": refusals::report_once(app).await}))
    }
}

struct AuditPruner;

#[async_trait]
impl BackgroundTask for AuditPruner {
    async fn activate(&self, app: &Arc<Marina>) -> Result<Value, Error> {
        panic_point("audit_pruner");
        let removed = app.prune_audit_events().await?;
        if removed > 0 {
            tracing::info!(removed, "pruned audit events past retention");
        }
        Ok(json!({"removed": removed}))
    }
}

struct BackupScheduler;

#[async_trait]
impl BackgroundTask for BackupScheduler {
    async fn activate(&self, app: &Arc<Marina>) -> Result<Value, Error> {
        panic_point("backup_scheduler");
        backup_schedule::schedule_once(app).await?;
        Ok(json!({}))
    }
}

struct BinlogArchiver;

#[async_trait]
impl BackgroundTask for BinlogArchiver {
    async fn activate(&self, app: &Arc<Marina>) -> Result<Value, Error> {
        panic_point("binlog_archiver");
        let (archiving, failed) = crate::binlog_archive::archive_all(app).await?;
        Ok(json!({"archiving_clusters": archiving, "failed": failed}))
    }
}

struct AgentHeartbeat;

struct Drainer;

#[async_trait]
impl BackgroundTask for Drainer {
    async fn activate(&self, app: &Arc<Marina>) -> Result<Value, Error> {
        panic_point("drainer");
        app.drain_round().await
    }
}

#[async_trait]
impl BackgroundTask for AgentHeartbeat {
    async fn activate(&self, app: &Arc<Marina>) -> Result<Value, Error> {
        panic_point("agent_heartbeat");
        app.heartbeat_agents().await
    }
}
