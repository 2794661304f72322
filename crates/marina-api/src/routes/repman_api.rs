//! replication-manager's protected API (seed `003_…`), read side: `/api/login`,
//! `/api/monitor`, `/api/clusters/{clusterName}`, its `settings` and
//! `topology/servers|master|slaves|logs|alerts`, and a server's
//! `processlist`, `variables`, `status`. Views over Marina's cluster, nodes,
//! monitor probes and event log, with the seed's field names where it gives
//! them. A Marina token (`Authorization: Bearer`) authenticates; `/api/login`
//! trades a token id and secret for that bearer, as replication-manager's
//! clients expect. Errors are replication-manager's texts (see `dialect`).
//! The actions are in `repman_actions`. See `docs/compat/replication-manager.md`.

use std::sync::Arc;

use axum::extract::{Path, State};
use marina_common::Error;
use marina_common::model::{
    ClusterRecord, ClusterStatus, Event, FailoverMode, NodeRecord, NodeRole, NodeStatus, OperationType, Scope,
};
use marina_core::Marina;
use marina_core::NodeLiveView;
use marina_core::auth::AuthContext;
use marina_core::monitor::view::NodeStatusView;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{Auth, Json};

/// A cluster of the caller's tenant by name (or id): 500 `No Cluster` otherwise.
pub(crate) async fn cluster_of(app: &Marina, auth: &AuthContext, name: &str) -> Result<ClusterRecord, Error> {
    app.cluster_by_name(Some(&auth.tenant_id), name)
        .await?
        .ok_or_else(|| Error::not_found("cluster", name))
}

/// A server of the cluster by node id or `host:port`.
pub(crate) async fn server_of(app: &Marina, c: &ClusterRecord, server: &str) -> Result<NodeRecord, Error> {
    app.node_by_name(c, server, None)
        .await?
        .ok_or_else(|| Error::not_found("server", server))
}

/// `{"username", "password"}`: a Marina token's id and secret.
#[derive(Deserialize, ToSchema)]
pub struct Login {
    pub username: String,
    pub password: String,
}

marina_common::debug_redacted!(Login { username } redact { password });

/// `{"token"}`: the bearer to send.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginToken {
    pub token: String,
}

/// replication-manager's login: the user is a token id, the password its
/// secret; the answer's token is the bearer to send (the secret itself).
#[utoipa::path(post, path = "/api/login", tag = "compat: replication-manager", request_body = Login,
    responses((status = 200, body = LoginToken), (status = 401, body = String)))]
pub async fn login(State(app): State<Arc<Marina>>, Json(input): Json<Login>) -> ApiResult<axum::Json<LoginToken>> {
    let auth = app.authenticate(Some(&input.password)).await?;
    if auth.token_id != input.username {
        return Err(Error::Unauthenticated("the user is not the password's token".into()).into());
    }
    Ok(axum::Json(LoginToken { token: input.password }))
}

/// replication-manager's configuration keys for a cluster.
fn settings(app: &Marina, c: &ClusterRecord) -> Value {
    let f = &app.config.failover;
    json!({
        "failover-mode": c.failover_mode.as_str(),
        "failover-limit": f.limit,
        "failover-time-limit": f.min_interval_secs,
        "failover-at-sync": c.primary_waits_for_acks(),
        "switchover-wait-trx": f.switchover_wait_trx_secs,
        "switchover-max-slave-delay": f.switchover_max_lag_secs,
        "autorejoin": true,
        "autoseed": c.auto_reseed,
        "replication-semisync": c.replication.as_str() == "semisync",
        "backup-physical-type": "mariabackup",
        "backup-logical-type": "mysqldump",
        "monitoring-ticker": app.config.monitor.interval_ms.div_ceil(1000),
        "topology": "master-slave",
        "db-servers-hosts": "",
    })
}

/// `yyyy/mm/dd hh:mm:ss` of an RFC 3339 time.
fn log_time(rfc3339: &str) -> String {
    rfc3339.get(..19).unwrap_or(rfc3339).replace('-', "/").replace('T', " ")
}

fn log_level(event_type: &str) -> &'static str {
    if ["fail", "down", "diverged", "lost", "refused"]
        .iter()
        .any(|w| event_type.contains(w))
    {
        "ERROR"
    } else if ["degraded", "lag", "fenced", "maintenance"]
        .iter()
        .any(|w| event_type.contains(w))
    {
        "WARN"
    } else {
        "INFO"
    }
}

/// `{"buffer": [{"group", "level", "timestamp", "text"}], "len", "line"}`.
fn log_buffer(cluster: &str, events: &[Event]) -> Value {
    let buffer: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "group": cluster,
                "level": log_level(&e.event_type),
                "timestamp": log_time(&e.created_at),
                "text": e.message,
            })
        })
        .collect();
    json!({"len": buffer.len(), "line": buffer.len(), "buffer": buffer})
}

async fn recent_events(app: &Marina, c: &ClusterRecord) -> Result<Vec<Event>, Error> {
    Ok(app
        .store
        .list_events(
            &c.id,
            marina_store::PageRequest {
                limit: 100,
                cursor: None,
            },
        )
        .await?
        .items)
}

/// replication-manager's state of a server.
fn state(n: &NodeStatusView, max_lag: f64) -> &'static str {
    match (n.status, n.role) {
        (NodeStatus::Maintenance, _) => "Maintenance",
        (NodeStatus::Down | NodeStatus::Failed | NodeStatus::Stopped, _) => "Failed",
        (NodeStatus::Creating | NodeStatus::Rebuilding | NodeStatus::Deleting, _) => "Suspect",
        (_, NodeRole::Primary) if n.probes.writable => "Master",
        (_, NodeRole::Primary) => "Suspect",
        (_, NodeRole::Replica) if n.probes.replication_io != Some(true) || n.probes.replication_sql != Some(true) => {
            "SlaveErr"
        }
        (_, NodeRole::Replica) if n.probes.lag_seconds.is_some_and(|l| l > max_lag) => "SlaveLate",
        _ => "Slave",
    }
}

fn yes_no(v: Option<bool>) -> &'static str {
    if v == Some(true) { "Yes" } else { "No" }
}

/// A server as replication-manager's topology shows it.
fn server(app: &Marina, node: &NodeRecord, view: &NodeStatusView) -> Value {
    let p = &view.probes;
    let primary = node.role == NodeRole::Primary;
    json!({
        "id": node.id,
        "url": format!("{}:{}", node.host, node.port),
        "host": node.host,
        "port": node.port.to_string(),
        "serverId": node.server_id,
        "state": state(view, app.config.monitor.max_reader_lag_secs as f64),
        "isDown": !p.reachable,
        "isMaintenance": node.status == NodeStatus::Maintenance,
        "readOnly": if p.writable { "OFF" } else { "ON" },
        "gtidBinlogPos": p.gtid_position,
        "haveSemiSync": true,
        "semiSyncMasterStatus": primary && p.semisync == Some(true),
        "semiSyncSlaveStatus": !primary && p.semisync == Some(true),
        "replicationLag": p.lag_seconds,
        "ioThread": if primary { "" } else { yes_no(p.replication_io) },
        "sqlThread": if primary { "" } else { yes_no(p.replication_sql) },
        "role": node.role.as_str(),
        "status": node.status.as_str(),
        "statusReason": node.status_reason,
    })
}

/// Every server of a cluster with its latest probes.
async fn servers(app: &Marina, c: &ClusterRecord) -> Result<Vec<(NodeRecord, Value)>, Error> {
    let nodes = app.store.list_nodes(&c.id).await?;
    let status = app.status_view(c.clone(), &nodes);
    Ok(nodes
        .into_iter()
        .filter_map(|n| {
            let v = status.nodes.iter().find(|v| v.node_id == n.id)?;
            let s = server(app, &n, v);
            Some((n, s))
        })
        .collect())
}

/// replication-manager's monitor document: version, host, clusters, the
/// backup tools, each cluster's configuration.
#[utoipa::path(get, path = "/api/monitor", tag = "compat: replication-manager", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = String)))]
pub async fn monitor(State(app): State<Arc<Marina>>, Auth(auth): Auth) -> ApiResult<axum::Json<Value>> {
    auth.require(Scope::Read)?;
    let clusters = app.all_clusters(&auth.tenant_id).await?;
    let mut confs = Map::new();
    for (c, _) in &clusters {
        confs.insert(c.name.clone(), settings(&app, c));
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    Ok(axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "fullVersion": format!("marina {}", env!("CARGO_PKG_VERSION")),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "hostname": hostname,
        "status": "A",
        "spitBrain": false,
        "agents": null,
        "clusters": clusters.iter().map(|(c, _)| c.name.clone()).collect::<Vec<_>>(),
        "tests": [],
        "config": {},
        "logs": {"buffer": [], "len": 0, "line": 0},
        "servicePlans": null,
        "backupLogicalList": {"dumpling": false, "internal": false, "mydumper": false, "mysqldump": true},
        "backupPhysicalList": {"mariabackup": true, "xtrabackup": false},
        "Confs": confs,
    })))
}

/// One cluster, replication-manager's shape (the fields Marina has).
#[utoipa::path(get, path = "/api/clusters/{clusterName}", tag = "compat: replication-manager",
    security(("bearer" = [])), params(("clusterName" = String, Path)),
    responses((status = 200, body = Object), (status = 500, body = String)))]
pub async fn cluster(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    auth.require(Scope::Read)?;
    let c = cluster_of(&app, &auth, &name).await?;
    let servers = servers(&app, &c).await?;
    let (failovers, last) = app
        .store
        .count_operations_since(&c.id, OperationType::Failover, "0000")
        .await?;
    let last_unix = last
        .as_deref()
        .and_then(marina_common::time_fmt::parse_rfc3339)
        .map_or(0, |t| t.unix_timestamp());
    let has_backup = app
        .all_backups(&c.id)
        .await?
        .iter()
        .any(|b| b.status == marina_common::model::BackupStatus::Completed);
    let primary_up = servers.iter().any(|(_, s)| s["state"] == "Master");
    let all_up = servers.iter().all(|(_, s)| !s["isDown"].as_bool().unwrap_or(true));
    let replicas_ok = servers.iter().filter(|(_, s)| s["state"] == "Slave").count();
    let events = recent_events(&app, &c).await?;
    let mut out = json!({
        "name": c.name,
        "tenant": c.tenant_id,
        "workingDir": app.config.data_dir.join("nodes").display().to_string(),
        "dbServers": servers.iter().map(|(_, s)| s["url"].clone()).collect::<Vec<_>>(),
        "dbServersCrashes": null,
        "proxyServers": [
            format!("{}:{}", c.writer_host, c.endpoint_port),
            format!("{}:{}", c.reader_host, c.endpoint_port),
        ],
        "failoverCounter": failovers,
        "failoverLastTime": last_unix,
        "activePassiveStatus": "A",
        "isSplitBrain": false,
        "isFailedArbitrator": false,
        "isLostMajority": false,
        "isDown": !primary_up,
        "isClusterDown": !primary_up,
        "isAllDbUp": all_up,
        "isFailable": c.failover_mode == FailoverMode::Automatic && replicas_ok > 0,
        "isPostgres": false,
        "isProvision": c.status != ClusterStatus::Creating,
        "isNeedProxyRestart": false,
        "isNeedProxiesRestart": false,
        "isNeedDatabasesRestart": false,
        "isNeedDatabasesRollingRestart": false,
        "isNeedDatabasesRollingReprov": false,
        "isNeedDatabasesReprov": false,
        "isValidBackup": has_backup,
        "isNotMonitoring": false,
        "isCapturing": false,
        "isGitPull": false,
        "isAlertDisable": false,
    });
    let rest = json!({
        "config": settings(&app, &c),
        "cleanReplication": replicas_ok + 1 == servers.len() && primary_up,
        "topology": "master-slave",
        "log": log_buffer(&c.name, &events),
        "jobResults": {},
        "monitorType": servers.iter().map(|(_, s)| (s["url"].as_str().unwrap_or_default().to_string(), json!("database"))).collect::<Map<_, _>>(),
        "stateMachine": {
            "discovered": c.status != ClusterStatus::Creating,
            "inFailover": c.status == ClusterStatus::FailingOver,
            "inSchemaMonitor": false,
        },
        "agents": null,
        "waitingRejoin": 0,
        "waitingSwitchover": 0,
        "waitingFailover": 0,
        "SlavesConnected": replicas_ok,
        "marinaStatus": c.status.as_str(),
    });
    if let (Some(o), Value::Object(r)) = (out.as_object_mut(), rest) {
        o.extend(r);
    }
    Ok(axum::Json(out))
}

/// The cluster's configuration keys.
#[utoipa::path(get, path = "/api/clusters/{clusterName}/settings", tag = "compat: replication-manager",
    security(("bearer" = [])), params(("clusterName" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = String), (status = 500, body = String)))]
pub async fn cluster_settings(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    auth.require(Scope::Read)?;
    let c = cluster_of(&app, &auth, &name).await?;
    Ok(axum::Json(settings(&app, &c)))
}

/// `servers`, `master`, `slaves`, `logs` or `alerts` of a cluster.
#[utoipa::path(get, path = "/api/clusters/{clusterName}/topology/{view}", tag = "compat: replication-manager",
    security(("bearer" = [])),
    params(("clusterName" = String, Path), ("view" = String, Path, description = "servers, master, slaves, logs or alerts")),
    responses((status = 200, body = Object), (status = 500, body = String)))]
pub async fn topology(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((name, view)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    auth.require(Scope::Read)?;
    let c = cluster_of(&app, &auth, &name).await?;
    let all = || servers(&app, &c);
    let out = match view.as_str() {
        "servers" => Value::Array(all().await?.into_iter().map(|(_, s)| s).collect()),
        "master" => all()
            .await?
            .into_iter()
            .find(|(n, _)| n.role == NodeRole::Primary)
            .map(|(_, s)| s)
            .ok_or_else(|| Error::Unavailable("the cluster has no master".into()))?,
        "slaves" => Value::Array(
            all()
                .await?
                .into_iter()
                .filter(|(n, _)| n.role == NodeRole::Replica)
                .map(|(_, s)| s)
                .collect(),
        ),
        "logs" => log_buffer(&c.name, &recent_events(&app, &c).await?)["buffer"].clone(),
        "alerts" => {
            let mut errors = Vec::new();
            let mut warnings = Vec::new();
            for (_, s) in all().await? {
                let url = s["url"].as_str().unwrap_or_default();
                match s["state"].as_str().unwrap_or_default() {
                    "Failed" | "SlaveErr" | "Suspect" => {
                        errors.push(json!({"err": "ERR00000", "desc": format!("server {url} is {}", s["state"])}))
                    }
                    "SlaveLate" | "Maintenance" => {
                        warnings.push(json!({"err": "WARN0000", "desc": format!("server {url} is {}", s["state"])}))
                    }
                    _ => {}
                }
            }
            json!({"errors": errors, "warnings": warnings})
        }
        other => {
            return Err(Error::InvalidRequest(format!(
                "topology view {other:?} is not served; Marina serves servers, master, slaves, logs, alerts"
            ))
            .into());
        }
    };
    Ok(axum::Json(out))
}

/// A server's `processlist`, `variables` or `status`, read live.
#[utoipa::path(get, path = "/api/clusters/{clusterName}/servers/{serverName}/{view}", tag = "compat: replication-manager",
    security(("bearer" = [])),
    params(("clusterName" = String, Path), ("serverName" = String, Path, description = "node id or host:port"),
        ("view" = String, Path, description = "processlist, variables or status")),
    responses((status = 200, body = Object), (status = 500, body = String)))]
pub async fn server_view(
    State(app): State<Arc<Marina>>,
    Auth(auth): Auth,
    Path((name, server_name, view)): Path<(String, String, String)>,
) -> ApiResult<axum::Json<Value>> {
    auth.require(Scope::Read)?;
    let c = cluster_of(&app, &auth, &name).await?;
    let node = server_of(&app, &c, &server_name).await?;
    let live = match view.as_str() {
        "processlist" => NodeLiveView::ProcessList,
        "variables" => NodeLiveView::Variables,
        "status" => NodeLiveView::StatusVariables,
        other => {
            return Err(Error::InvalidRequest(format!(
                "server view {other:?} is not served; Marina serves processlist, variables, status"
            ))
            .into());
        }
    };
    let rows = app.node_live_view(&auth.tenant_id, &c.id, &node.id, live).await?;
    let out: Vec<Value> = match live {
        NodeLiveView::ProcessList => rows
            .into_iter()
            .map(|r| Value::Object(r.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect()))
            .collect(),
        _ => rows
            .into_iter()
            .map(|r| {
                let col = |want: &str| {
                    r.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(want))
                        .map_or(Value::Null, |(_, v)| v.clone())
                };
                json!({"variableName": col("Variable_name"), "value": col("Value")})
            })
            .collect(),
    };
    Ok(axum::Json(Value::Array(out)))
}
