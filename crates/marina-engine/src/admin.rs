//! Management SQL sent to nodes, behind the `NodeAdmin` trait so services can be
//! unit-tested with a fake; `MysqlAdmin` is the real implementation over
//! `mysql_async` (which speaks MariaDB's auth plugins).

use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

/// Where a node listens and how Marina logs in.
#[derive(Clone)]
pub struct NodeAddr {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Unix socket of a local node: management goes through it when set, so it
    /// does not depend on the network path clients and replicas use.
    pub socket: Option<String>,
}

marina_common::debug_redacted!(NodeAddr { host, port, user, socket } redact { password });

/// Connection options for a management connection.
pub(crate) fn connect_opts(n: &NodeAddr) -> OptsBuilder {
    let b = OptsBuilder::default()
        .ip_or_hostname(n.host.clone())
        .tcp_port(n.port)
        .user(Some(n.user.clone()))
        .pass(Some(n.password.clone()));
    match &n.socket {
        Some(path) => b.socket(Some(path.clone())).prefer_socket(true),
        None => b.prefer_socket(false),
    }
}

/// The primary a replica follows.
#[derive(Clone)]
pub struct ReplicaSource {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

marina_common::debug_redacted!(ReplicaSource { host, port, user } redact { password });

/// A replica's view of its replication threads.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStatus {
    pub io_running: bool,
    pub sql_running: bool,
    pub seconds_behind: Option<u64>,
    pub last_error: String,
}

/// Failures talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot connect to {host}:{port}: {message}")]
    Connect { host: String, port: u16, message: String },
    #[error("query on {host}:{port} failed: {message}")]
    Query { host: String, port: u16, message: String },
    #[error("timed out talking to {host}:{port}")]
    Timeout { host: String, port: u16 },
    /// The server refused a statement (`code`: MariaDB's error number).
    #[error("{message}")]
    Refused { code: u16, message: String },
}

/// Management actions on one node.
#[async_trait]
pub trait NodeAdmin: Send + Sync + 'static {
    /// Connects and runs `SELECT 1`.
    async fn ping(&self, node: &NodeAddr) -> Result<(), AdminError>;
    /// Sets `read_only`.
    async fn set_read_only(&self, node: &NodeAddr, read_only: bool) -> Result<(), AdminError>;
    /// Makes the node the writable primary: semi-sync master side on when
    /// `semisync`, then `read_only=OFF`.
    async fn make_primary(&self, node: &NodeAddr, semisync: bool) -> Result<(), AdminError>;
    /// Turns the semi-sync master side on or off (a primary gaining its first
    /// replica or losing its last one).
    async fn set_semisync_primary(&self, node: &NodeAddr, on: bool) -> Result<(), AdminError>;
    /// Points the node at `source` with GTID (`MASTER_USE_GTID=slave_pos`) and
    /// starts replication. Idempotent: a node already following keeps its position.
    /// `demote` is for a node that was a primary: its own binlog history becomes
    /// its replication position first (`MASTER_DEMOTE_TO_SLAVE=1`).
    async fn start_replica(&self, node: &NodeAddr, source: &ReplicaSource, demote: bool) -> Result<(), AdminError>;
    /// Fences a node: `read_only=ON`, then every client connection is killed
    /// (Marina's and replication's own sessions stay). Returns how many were killed.
    async fn fence(&self, node: &NodeAddr) -> Result<u32, AdminError>;
    /// Sets `read_only=ON` at once, or — when statements still running would
    /// make it wait — interrupts them first (`KILL QUERY`: the sessions stay,
    /// their statement fails and rolls back), and kills the client
    /// connections if even that is not enough. Returns how many statements
    /// or sessions were stopped (0: none had to be).
    async fn hold_read_only(&self, node: &NodeAddr) -> Result<u32, AdminError>;
    /// Kills client connections only (no read-only change).
    async fn kill_client_connections(&self, node: &NodeAddr) -> Result<u32, AdminError>;
    /// Fences a primary that must acknowledge nothing more (an isolated
    /// one): every client connection is killed first (`KILL CONNECTION`
    /// shuts its socket, so a commit waiting for a semi-sync
    /// acknowledgement ends without its OK reaching the client — `KILL
    /// QUERY`, as `hold_read_only` uses, lets that commit finish *and*
    /// answer), then `read_only=ON` at once; again while a commit begun in
    /// between holds it back. Returns how many connections were killed.
    async fn isolate(&self, node: &NodeAddr) -> Result<u32, AdminError>;
    /// Ends the replica's IO thread at once (`KILL` of its thread). `STOP
    /// SLAVE` alone waits 2 s for a semi-sync IO thread whose source hangs:
    /// the thread misses the first stop signal and the server signals again
    /// only after 2 s (measured on 10.11). A killed thread that was
    /// reconnecting still waits on its socket until that is destroyed (the
    /// failover does, at the data path).
    async fn kill_io_thread(&self, node: &NodeAddr) -> Result<(), AdminError>;
    /// Stops the IO thread only (after a killed one ended, up to 1 s): the
    /// replica stops receiving from its source but keeps applying what it has.
    async fn stop_io_thread(&self, node: &NodeAddr) -> Result<(), AdminError>;
    /// Starts the SQL thread (a no-op when it runs): a candidate whose SQL
    /// thread a backup's copy stopped must apply its relay log.
    async fn start_sql_thread(&self, node: &NodeAddr) -> Result<(), AdminError>;
    /// Stops the SQL thread only (a no-op when stopped): the replica keeps
    /// receiving (and acknowledging) its source's events but applies none,
    /// so a logical backup reads a node that writes nothing.
    async fn stop_sql_thread(&self, node: &NodeAddr) -> Result<(), AdminError>;
    /// Stops replication and forgets the source (a replica about to be promoted).
    async fn stop_replication(&self, node: &NodeAddr) -> Result<(), AdminError>;
    /// Forgets every replication and binlog history (a restored datadir carries
    /// its source cluster's): no source, empty binlog, empty `gtid_slave_pos`.
    async fn reset_history(&self, node: &NodeAddr) -> Result<(), AdminError>;
    /// Sets where the node's replication starts (`gtid_slave_pos`): the GTID a
    /// copy of another node's data is consistent with.
    async fn set_slave_pos(&self, node: &NodeAddr, pos: &str) -> Result<(), AdminError>;
    /// The node's binlog files with their sizes, oldest first (`SHOW BINARY LOGS`).
    async fn binlog_files(&self, node: &NodeAddr) -> Result<Vec<(String, u64)>, AdminError>;
    /// The node's `gtid_binlog_pos`.
    async fn gtid_binlog_pos(&self, node: &NodeAddr) -> Result<String, AdminError>;
    /// Closes the current binlog file and opens the next (`FLUSH BINARY LOGS`).
    async fn flush_binary_logs(&self, node: &NodeAddr) -> Result<(), AdminError>;
    /// The GTID state a binlog file starts from (its `Gtid_list` event).
    async fn binlog_start_state(&self, node: &NodeAddr, file: &str) -> Result<String, AdminError>;
    /// Waits until the node has applied `pos` (`MASTER_GTID_WAIT`); false on timeout.
    async fn wait_for_gtid(&self, node: &NodeAddr, pos: &str, timeout: Duration) -> Result<bool, AdminError>;
    /// The ids of the open InnoDB transactions. The server answers from a
    /// copy it refreshes only when `TRX_LIST_REFRESH` has passed since the
    /// list was last read: ask less often than that, or read the same list.
    async fn open_transactions(&self, node: &NodeAddr) -> Result<Vec<String>, AdminError>;
    /// The node's redo log: (`Innodb_lsn_current`, `innodb_log_file_size`),
    /// in bytes (a backup's pace follows the first, bounded by the second).
    async fn redo(&self, node: &NodeAddr) -> Result<(u64, u64), AdminError>;
    /// The replica threads' state, or `None` if the node is not a replica.
    async fn replica_status(&self, node: &NodeAddr) -> Result<Option<ReplicaStatus>, AdminError>;
    /// Runs statements built by `catalog` in order on one connection; a
    /// statement the server refuses is `AdminError::Refused`.
    async fn run_statements(&self, node: &NodeAddr, stmts: &[String]) -> Result<(), AdminError>;
    /// Rows of a query built by `catalog`, as (column, value) pairs.
    async fn rows(&self, node: &NodeAddr, sql: &str) -> Result<Vec<Vec<(String, Option<String>)>>, AdminError>;
}

/// How long InnoDB serves `information_schema.innodb_trx` from the same copy
/// after it was last read (`CACHE_MIN_IDLE_TIME_US`, 100 ms, and a margin):
/// polled faster, the list never changes.
pub const TRX_LIST_REFRESH: Duration = Duration::from_millis(120);

/// `NodeAdmin` over real connections (one short-lived connection per call).
#[derive(Debug, Clone)]
pub struct MysqlAdmin {
    /// Deadline for a connection plus its statements.
    pub timeout: Duration,
}

impl Default for MysqlAdmin {
    fn default() -> Self {
        MysqlAdmin {
            timeout: Duration::from_secs(5),
        }
    }
}

/// `MASTER_HEARTBEAT_PERIOD`: a replica hears from its primary at least this
/// often, so a silent primary is noticed by its replicas within a few periods —
/// the witnesses failure detection relies on.
pub const HEARTBEAT_PERIOD_SECS: f64 = 0.1;

/// How long a killed IO thread gets to end before `STOP SLAVE` runs anyway.
const IO_THREAD_EXIT_WAIT: Duration = Duration::from_secs(1);

/// Runs `work` within `deadline`; running out of time is `AdminError::Timeout`.
async fn within<T>(
    n: &NodeAddr,
    deadline: Duration,
    work: impl std::future::Future<Output = Result<T, AdminError>>,
) -> Result<T, AdminError> {
    tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| AdminError::Timeout {
            host: n.host.clone(),
            port: n.port,
        })?
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl MysqlAdmin {
    /// Ends what `what` says of every client session (Marina's and
    /// replication's own stay); returns how many.
    async fn kill_clients(&self, node: &NodeAddr, what: Kill) -> Result<u32, AdminError> {
        let (running, kill) = match what {
            Kill::RunningQueries => ("AND command = 'Query'", "KILL QUERY"),
            Kill::Connections => ("", "KILL CONNECTION"),
        };
        let work = async {
            let mut conn = self.connect(node).await?;
            let ids: Vec<u64> = conn
                .query(format!(
                    "SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() \
                     AND user NOT IN ('system user', 'event_scheduler', 'unauthenticated user', {}, {}) {running}",
                    quote(crate::users::MGMT_USER),
                    quote(crate::users::REPL_USER)
                ))
                .await
                .map_err(|e| query_err(node, e))?;
            let mut killed = 0;
            for id in ids {
                // A session may end on its own meanwhile: that is fine.
                if conn.query_drop(format!("{kill} {id}")).await.is_ok() {
                    killed += 1;
                }
            }
            let _ = conn.disconnect().await;
            Ok(killed)
        };
        within(node, self.timeout, work).await
    }

    async fn connect(&self, n: &NodeAddr) -> Result<Conn, AdminError> {
        match tokio::time::timeout(self.timeout, Conn::new(connect_opts(n))).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(AdminError::Connect {
                host: n.host.clone(),
                port: n.port,
                message: e.to_string(),
            }),
            Err(_) => Err(AdminError::Timeout {
                host: n.host.clone(),
                port: n.port,
            }),
        }
    }

    /// Runs one query and returns the first column of its first row, within
    /// `deadline` (connection included).
    async fn scalar<T>(&self, n: &NodeAddr, sql: String, deadline: Duration) -> Result<Option<T>, AdminError>
    where
        T: mysql_async::prelude::FromValue + Send + 'static,
    {
        let work = async {
            let mut conn = self.connect(n).await?;
            let r: Option<T> = conn.query_first(sql).await.map_err(|e| query_err(n, e))?;
            let _ = conn.disconnect().await;
            Ok(r)
        };
        within(n, deadline, work).await
    }

    /// The ids of the node's replication IO threads.
    async fn io_threads(conn: &mut Conn, n: &NodeAddr) -> Result<Vec<u64>, AdminError> {
        conn.query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'")
            .await
            .map_err(|e| query_err(n, e))
    }

    /// Waits (bounded) until no IO thread runs, then runs `stmts`: `STOP
    /// SLAVE` on a thread still ending would wait 2 s (see `kill_io_thread`).
    async fn after_io_thread(&self, n: &NodeAddr, stmts: &[&str]) -> Result<(), AdminError> {
        let work = async {
            let mut conn = self.connect(n).await?;
            let started = std::time::Instant::now();
            while started.elapsed() < IO_THREAD_EXIT_WAIT && !Self::io_threads(&mut conn, n).await?.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            for s in stmts {
                conn.query_drop(*s).await.map_err(|e| query_err(n, e))?;
            }
            let _ = conn.disconnect().await;
            Ok(())
        };
        within(n, self.timeout, work).await
    }

    /// Runs statements in order on one connection.
    async fn exec(&self, n: &NodeAddr, stmts: &[String]) -> Result<(), AdminError> {
        let work = async {
            let mut conn = self.connect(n).await?;
            for s in stmts {
                conn.query_drop(s.as_str()).await.map_err(|e| query_err(n, e))?;
            }
            let _ = conn.disconnect().await;
            Ok(())
        };
        within(n, self.timeout, work).await
    }
}

/// A server's refusal keeps its error number; anything else is `query_err`.
fn refused_or_query_err(n: &NodeAddr, e: mysql_async::Error) -> AdminError {
    match e {
        mysql_async::Error::Server(s) => AdminError::Refused {
            code: s.code,
            message: s.message,
        },
        other => query_err(n, other),
    }
}

fn query_err(n: &NodeAddr, e: mysql_async::Error) -> AdminError {
    AdminError::Query {
        host: n.host.clone(),
        port: n.port,
        message: e.to_string(),
    }
}

/// How long `set_read_only(true)` waits for running writes.
pub const READ_ONLY_WAIT_SECS: u64 = 1;

/// What `kill_clients` ends.
/// How many times `isolate` kills and retries before it reports failure.
const ISOLATE_ATTEMPTS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kill {
    /// The statement each session is running (`KILL QUERY`).
    RunningQueries,
    /// Every session (`KILL CONNECTION`).
    Connections,
}

#[async_trait]
impl NodeAdmin for MysqlAdmin {
    async fn ping(&self, node: &NodeAddr) -> Result<(), AdminError> {
        self.exec(node, &["SELECT 1".into()]).await
    }

    async fn set_read_only(&self, node: &NodeAddr, read_only: bool) -> Result<(), AdminError> {
        if !read_only {
            return self.exec(node, &["SET GLOBAL read_only = OFF".into()]).await;
        }
        // `read_only = ON` takes the global read lock, which waits for every
        // statement that is writing: give up after `READ_ONLY_WAIT_SECS`
        // (an error the caller sees) rather than leave the request waiting
        // on the server after this call timed out.
        self.exec(
            node,
            &[
                format!("SET SESSION lock_wait_timeout = {READ_ONLY_WAIT_SECS}"),
                "SET GLOBAL read_only = ON".into(),
            ],
        )
        .await
    }

    async fn make_primary(&self, node: &NodeAddr, semisync: bool) -> Result<(), AdminError> {
        let ss = if semisync { "ON" } else { "OFF" };
        self.exec(
            node,
            &[
                format!("SET GLOBAL rpl_semi_sync_master_enabled = {ss}"),
                "SET GLOBAL read_only = OFF".into(),
            ],
        )
        .await
    }

    async fn run_statements(&self, node: &NodeAddr, stmts: &[String]) -> Result<(), AdminError> {
        let work = async {
            let mut conn = self.connect(node).await?;
            for s in stmts {
                conn.query_drop(s.as_str())
                    .await
                    .map_err(|e| refused_or_query_err(node, e))?;
            }
            let _ = conn.disconnect().await;
            Ok(())
        };
        within(node, self.timeout, work).await
    }

    async fn rows(&self, node: &NodeAddr, sql: &str) -> Result<Vec<Vec<(String, Option<String>)>>, AdminError> {
        let work = async {
            let mut conn = self.connect(node).await?;
            let rows: Vec<mysql_async::Row> = conn.query(sql).await.map_err(|e| query_err(node, e))?;
            let _ = conn.disconnect().await;
            Ok(rows
                .into_iter()
                .map(|row| {
                    let names: Vec<String> = row.columns_ref().iter().map(|c| c.name_str().into_owned()).collect();
                    names
                        .into_iter()
                        .enumerate()
                        .map(|(i, name)| {
                            let v = match row.as_ref(i) {
                                None | Some(mysql_async::Value::NULL) => None,
                                Some(mysql_async::Value::Bytes(b)) => {
                                    Some(String::from_utf8_lossy(b.as_slice()).into_owned())
                                }
                                Some(other) => Some(other.as_sql(true).trim_matches('\'').to_string()),
                            };
                            (name, v)
                        })
                        .collect()
                })
                .collect())
        };
        within(node, self.timeout, work).await
    }

    async fn set_semisync_primary(&self, node: &NodeAddr, on: bool) -> Result<(), AdminError> {
        let v = if on { "ON" } else { "OFF" };
        self.exec(node, &[format!("SET GLOBAL rpl_semi_sync_master_enabled = {v}")])
            .await
    }

    async fn start_replica(&self, node: &NodeAddr, s: &ReplicaSource, demote: bool) -> Result<(), AdminError> {
        let change = format!(
            "CHANGE MASTER TO MASTER_HOST = {}, MASTER_PORT = {}, MASTER_USER = {}, MASTER_PASSWORD = {}, \
             MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, MASTER_HEARTBEAT_PERIOD = {}{}",
            quote(&s.host),
            s.port,
            quote(&s.user),
            quote(&s.password),
            HEARTBEAT_PERIOD_SECS,
            if demote { ", MASTER_DEMOTE_TO_SLAVE = 1" } else { "" }
        );
        self.exec(
            node,
            &[
                "SET GLOBAL rpl_semi_sync_master_enabled = OFF".into(),
                "STOP SLAVE".into(),
                change,
                "START SLAVE".into(),
            ],
        )
        .await
    }

    async fn fence(&self, node: &NodeAddr) -> Result<u32, AdminError> {
        self.exec(node, &["SET GLOBAL read_only = ON".into()]).await?;
        self.kill_client_connections(node).await
    }

    async fn hold_read_only(&self, node: &NodeAddr) -> Result<u32, AdminError> {
        let at_once = [
            "SET SESSION lock_wait_timeout = 0".into(),
            "SET GLOBAL read_only = ON".into(),
        ];
        if self.exec(node, &at_once).await.is_ok() {
            return Ok(0);
        }
        let interrupted = self.kill_clients(node, Kill::RunningQueries).await?;
        if self.set_read_only(node, true).await.is_ok() {
            return Ok(interrupted);
        }
        let killed = self.kill_clients(node, Kill::Connections).await?;
        self.set_read_only(node, true).await?;
        Ok(interrupted + killed)
    }

    async fn kill_client_connections(&self, node: &NodeAddr) -> Result<u32, AdminError> {
        self.kill_clients(node, Kill::Connections).await
    }

    async fn isolate(&self, node: &NodeAddr) -> Result<u32, AdminError> {
        let at_once = [
            "SET SESSION lock_wait_timeout = 0".into(),
            "SET GLOBAL read_only = ON".into(),
        ];
        let mut killed = 0;
        let mut last = None;
        for _ in 0..ISOLATE_ATTEMPTS {
            killed += self.kill_clients(node, Kill::Connections).await?;
            match self.exec(node, &at_once).await {
                Ok(()) => {
                    // Sessions opened between the kill and the switch go too.
                    return Ok(killed + self.kill_clients(node, Kill::Connections).await?);
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(last.unwrap_or_else(|| AdminError::Timeout {
            host: node.host.clone(),
            port: node.port,
        }))
    }

    async fn kill_io_thread(&self, node: &NodeAddr) -> Result<(), AdminError> {
        let work = async {
            let mut conn = self.connect(node).await?;
            for id in Self::io_threads(&mut conn, node).await? {
                // Gone already is as good.
                let _ = conn.query_drop(format!("KILL {id}")).await;
            }
            let _ = conn.disconnect().await;
            Ok(())
        };
        within(node, self.timeout, work).await
    }

    async fn stop_io_thread(&self, node: &NodeAddr) -> Result<(), AdminError> {
        self.after_io_thread(node, &["STOP SLAVE IO_THREAD"]).await
    }

    async fn start_sql_thread(&self, node: &NodeAddr) -> Result<(), AdminError> {
        self.exec(node, &["START SLAVE SQL_THREAD".into()]).await
    }

    async fn stop_sql_thread(&self, node: &NodeAddr) -> Result<(), AdminError> {
        self.exec(node, &["STOP SLAVE SQL_THREAD".into()]).await
    }

    async fn stop_replication(&self, node: &NodeAddr) -> Result<(), AdminError> {
        // No wait for the IO thread: a failover stopped it already
        // (`stop_io_thread`), and a switchover's is healthy and stops at
        // once (waiting here for it to be gone cost every switchover 1 s).
        self.exec(node, &["STOP SLAVE".into(), "RESET SLAVE ALL".into()]).await
    }

    async fn reset_history(&self, node: &NodeAddr) -> Result<(), AdminError> {
        let mut stmts: Vec<String> = vec!["STOP ALL SLAVES".into(), "RESET SLAVE ALL".into()];
        // `RESET MASTER` waits for a binlog checkpoint (about a second on a
        // busy node): only when there is binlog history to forget. A fresh
        // physical copy has none (binlogs are not copied).
        if !self.gtid_binlog_pos(node).await?.is_empty() {
            stmts.push("RESET MASTER".into());
        }
        stmts.push("SET GLOBAL gtid_slave_pos = ''".into());
        self.exec(node, &stmts).await
    }

    async fn binlog_files(&self, node: &NodeAddr) -> Result<Vec<(String, u64)>, AdminError> {
        let work = async {
            let mut conn = self.connect(node).await?;
            let rows: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await.map_err(|e| query_err(node, e))?;
            let _ = conn.disconnect().await;
            Ok(rows
                .into_iter()
                .filter_map(|r| {
                    let name: String = r.get(0)?;
                    let size: u64 = r.get(1)?;
                    Some((name, size))
                })
                .collect())
        };
        within(node, self.timeout, work).await
    }

    async fn gtid_binlog_pos(&self, node: &NodeAddr) -> Result<String, AdminError> {
        Ok(self
            .scalar::<String>(node, "SELECT @@gtid_binlog_pos".into(), self.timeout)
            .await?
            .unwrap_or_default())
    }

    async fn flush_binary_logs(&self, node: &NodeAddr) -> Result<(), AdminError> {
        self.exec(node, &["FLUSH BINARY LOGS".into()]).await
    }

    async fn binlog_start_state(&self, node: &NodeAddr, file: &str) -> Result<String, AdminError> {
        let sql = format!("SHOW BINLOG EVENTS IN {} LIMIT 4", quote(file));
        let work = async {
            let mut conn = self.connect(node).await?;
            let rows: Vec<mysql_async::Row> = conn.query(sql).await.map_err(|e| query_err(node, e))?;
            let _ = conn.disconnect().await;
            for r in rows {
                let kind: Option<String> = r.get("Event_type");
                let info: Option<String> = r.get("Info");
                if kind.as_deref() == Some("Gtid_list") {
                    let info = info.unwrap_or_default();
                    return Ok(info
                        .trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .replace(' ', ""));
                }
            }
            Err(AdminError::Query {
                host: node.host.clone(),
                port: node.port,
                message: format!("binlog {file} has no Gtid_list event"),
            })
        };
        within(node, self.timeout, work).await
    }

    async fn set_slave_pos(&self, node: &NodeAddr, pos: &str) -> Result<(), AdminError> {
        self.exec(node, &[format!("SET GLOBAL gtid_slave_pos = {}", quote(pos))])
            .await
    }

    async fn wait_for_gtid(&self, node: &NodeAddr, pos: &str, timeout: Duration) -> Result<bool, AdminError> {
        let sql = format!("SELECT MASTER_GTID_WAIT({}, {})", quote(pos), timeout.as_secs_f64());
        Ok(self.scalar::<i64>(node, sql, timeout + self.timeout).await? == Some(0))
    }

    async fn open_transactions(&self, node: &NodeAddr) -> Result<Vec<String>, AdminError> {
        let work = async {
            let mut conn = self.connect(node).await?;
            let ids: Vec<String> = conn
                .query("SELECT CAST(trx_id AS CHAR) FROM information_schema.innodb_trx")
                .await
                .map_err(|e| query_err(node, e))?;
            let _ = conn.disconnect().await;
            Ok(ids)
        };
        within(node, self.timeout, work).await
    }

    async fn redo(&self, node: &NodeAddr) -> Result<(u64, u64), AdminError> {
        let sql = "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                   WHERE VARIABLE_NAME = 'INNODB_LSN_CURRENT'), @@innodb_log_file_size";
        let work = async {
            let mut conn = self.connect(node).await?;
            let row: Option<(u64, u64)> = conn.query_first(sql).await.map_err(|e| query_err(node, e))?;
            let _ = conn.disconnect().await;
            row.ok_or_else(|| AdminError::Query {
                host: node.host.clone(),
                port: node.port,
                message: "no redo reading".into(),
            })
        };
        within(node, self.timeout, work).await
    }

    async fn replica_status(&self, node: &NodeAddr) -> Result<Option<ReplicaStatus>, AdminError> {
        let work = async {
            let mut conn = self.connect(node).await?;
            let row: Option<mysql_async::Row> = conn
                .query_first("SHOW SLAVE STATUS")
                .await
                .map_err(|e| query_err(node, e))?;
            let _ = conn.disconnect().await;
            Ok(row.map(|r| {
                let text = |name: &str| -> String {
                    r.get_opt::<Option<String>, _>(name)
                        .and_then(|v| v.ok())
                        .flatten()
                        .unwrap_or_default()
                };
                ReplicaStatus {
                    io_running: text("Slave_IO_Running") == "Yes",
                    sql_running: text("Slave_SQL_Running") == "Yes",
                    seconds_behind: text("Seconds_Behind_Master").parse().ok(),
                    last_error: [text("Last_IO_Error"), text("Last_SQL_Error")]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            }))
        };
        within(node, self.timeout, work).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting_escapes() {
        assert_eq!(super::quote("a'b\\c"), "'a\\'b\\\\c'");
    }
}
