//! Health probes: one persistent management connection per node and one probe
//! (three short statements in one round trip) per monitor tick. A probe that
//! errors or times out drops the connection; the next probe reconnects.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::admin::{AdminError, NodeAddr, connect_opts};

/// What one probe saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    pub read_only: bool,
    pub server_id: u32,
    pub gtid_current_pos: String,
    pub gtid_binlog_pos: String,
    pub gtid_slave_pos: String,
    /// `None` when the node has no replication configured.
    pub replica: Option<ReplicaProbe>,
    /// `Rpl_semi_sync_master_status`: the primary waits for acknowledgements.
    pub semisync_master_on: bool,
    pub semisync_master_clients: u32,
    /// `Rpl_semi_sync_slave_status`.
    pub semisync_slave_on: bool,
    /// `Slave_received_heartbeats`: grows while a replica hears its primary.
    pub heartbeats: u64,
    pub threads_connected: u64,
    pub questions: u64,
    /// Round-trip time of the probe.
    pub latency: Duration,
}

/// The replication side of a probe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicaProbe {
    /// `Yes`, `No` or `Connecting`.
    pub io_state: String,
    pub sql_running: bool,
    pub seconds_behind: Option<u64>,
    pub gtid_io_pos: String,
    pub master_host: String,
    pub master_port: u16,
    pub master_log_file: String,
    pub read_master_log_pos: u64,
    pub last_io_error: String,
    pub last_sql_error: String,
    /// The SQL thread's error number (0 when none).
    pub last_sql_errno: u32,
}

impl ReplicaProbe {
    pub fn io_running(&self) -> bool {
        self.io_state == "Yes"
    }
}

/// What a probe asks, in one multi-statement query: the node's role and GTID
/// positions, its replication status, and the status counters it reports.
const PROBE_SQL: &str = "SELECT @@read_only, @@server_id, @@gtid_current_pos, @@gtid_binlog_pos, @@gtid_slave_pos; \
     SHOW SLAVE STATUS; \
     SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_master_status', \
     'Rpl_semi_sync_master_clients', 'Rpl_semi_sync_slave_status', 'Slave_received_heartbeats', \
     'Threads_connected', 'Questions')";

/// A persistent probing connection to one node.
pub struct ProbeConn {
    addr: NodeAddr,
    conn: Option<Conn>,
}

fn text(row: &Row, name: &str) -> String {
    row.get_opt::<Option<String>, _>(name)
        .and_then(|v| v.ok())
        .flatten()
        .unwrap_or_default()
}

impl ProbeConn {
    pub fn new(addr: NodeAddr) -> Self {
        ProbeConn { addr, conn: None }
    }

    /// The address probed.
    pub fn addr(&self) -> &NodeAddr {
        &self.addr
    }

    /// Probes the node within `timeout` (connecting first if needed).
    pub async fn probe(&mut self, timeout: Duration) -> Result<Probe, AdminError> {
        let start = Instant::now();
        let result = tokio::time::timeout(timeout, self.probe_inner()).await;
        match result {
            Ok(Ok(mut p)) => {
                p.latency = start.elapsed();
                Ok(p)
            }
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(AdminError::Timeout {
                    host: self.addr.host.clone(),
                    port: self.addr.port,
                })
            }
        }
    }

    async fn probe_inner(&mut self) -> Result<Probe, AdminError> {
        if self.conn.is_none() {
            let c = Conn::new(connect_opts(&self.addr))
                .await
                .map_err(|e| AdminError::Connect {
                    host: self.addr.host.clone(),
                    port: self.addr.port,
                    message: e.to_string(),
                })?;
            self.conn = Some(c);
        }
        let addr = self.addr.clone();
        let qerr = |e: mysql_async::Error| AdminError::Query {
            host: addr.host.clone(),
            port: addr.port,
            message: e.to_string(),
        };
        let conn = self.conn.as_mut().expect("connected above");
        // One round trip for the three statements (a multi-statement query):
        // each round trip costs a wake-up on both sides, and the monitor
        // probes every node four times a second.
        let mut sets = conn.query_iter(PROBE_SQL).await.map_err(qerr)?;
        let vars: Vec<(i64, i64, String, String, String)> = sets.collect().await.map_err(qerr)?;
        let slave_rows: Vec<Row> = sets.collect().await.map_err(qerr)?;
        let status: Vec<(String, String)> = sets.collect().await.map_err(qerr)?;
        drop(sets);
        let (read_only, server_id, cur, binlog, slave) = vars.into_iter().next().unwrap_or_default();
        let slave_row = slave_rows.into_iter().next();
        let get = |name: &str| {
            status
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let replica = slave_row.map(|r| ReplicaProbe {
            io_state: text(&r, "Slave_IO_Running"),
            sql_running: text(&r, "Slave_SQL_Running") == "Yes",
            seconds_behind: text(&r, "Seconds_Behind_Master").parse().ok(),
            gtid_io_pos: text(&r, "Gtid_IO_Pos"),
            master_host: text(&r, "Master_Host"),
            master_port: text(&r, "Master_Port").parse().unwrap_or(0),
            master_log_file: text(&r, "Master_Log_File"),
            read_master_log_pos: text(&r, "Read_Master_Log_Pos").parse().unwrap_or(0),
            last_io_error: text(&r, "Last_IO_Error"),
            last_sql_error: text(&r, "Last_SQL_Error"),
            last_sql_errno: text(&r, "Last_SQL_Errno").parse().unwrap_or(0),
        });
        Ok(Probe {
            read_only: read_only != 0,
            server_id: server_id as u32,
            gtid_current_pos: cur,
            gtid_binlog_pos: binlog,
            gtid_slave_pos: slave,
            replica,
            semisync_master_on: get("Rpl_semi_sync_master_status") == "ON",
            semisync_master_clients: get("Rpl_semi_sync_master_clients").parse().unwrap_or(0),
            semisync_slave_on: get("Rpl_semi_sync_slave_status") == "ON",
            heartbeats: get("Slave_received_heartbeats").parse().unwrap_or(0),
            threads_connected: get("Threads_connected").parse().unwrap_or(0),
            questions: get("Questions").parse().unwrap_or(0),
            latency: Duration::ZERO,
        })
    }
}
