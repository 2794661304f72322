//! Marina's configuration: a TOML file (see `deploy/marina.example.toml`), every
//! field optional with the `*_DEFAULT` values below, and command-line overrides
//! applied by `marina serve`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use marina_common::size::{NodeSize, default_catalog};
use serde::Deserialize;

pub const LISTEN_DEFAULT: &str = "127.0.0.1:7300";
pub const DATA_DIR_DEFAULT: &str = "./marina-data";
pub const WRITER_POOL_DEFAULT: &str = "127.77.0.0/24";
pub const READER_POOL_DEFAULT: &str = "127.78.0.0/24";
pub const ENDPOINT_PORT_DEFAULT: u16 = 3306;
pub const NFT_TABLE_DEFAULT: &str = "marina";
pub const PORT_MIN_DEFAULT: u16 = 41000;
pub const PORT_MAX_DEFAULT: u16 = 41999;
pub const SEMISYNC_TIMEOUT_MS_DEFAULT: u64 = 10_000;
pub const START_TIMEOUT_SECS_DEFAULT: u64 = 60;
pub const MEMORY_OVERCOMMIT_DEFAULT: f64 = 1.5;
pub const RECONCILE_INTERVAL_MS_DEFAULT: u64 = 1000;
pub const MONITOR_INTERVAL_MS_DEFAULT: u64 = 250;
pub const QUOTA_CLUSTERS_DEFAULT: u32 = 20;
pub const RATE_PER_SECOND_DEFAULT: f64 = 50.0;
pub const RATE_BURST_DEFAULT: f64 = 200.0;
pub const QUOTA_NODES_DEFAULT: u32 = 60;
pub const QUOTA_MEMORY_GIB_DEFAULT: f64 = 256.0;
pub const PROBE_TIMEOUT_MS_DEFAULT: u64 = 200;
pub const FAILURE_WINDOW_MS_DEFAULT: u64 = 400;
pub const WITNESS_SILENCE_MS_DEFAULT: u64 = 400;
pub const MAX_READER_LAG_SECS_DEFAULT: u64 = 30;
pub const FAILOVER_LIMIT_DEFAULT: u32 = 5;
pub const FAILOVER_WINDOW_SECS_DEFAULT: u64 = 3600;
pub const FAILOVER_MIN_INTERVAL_SECS_DEFAULT: u64 = 30;
pub const RELAY_APPLY_TIMEOUT_SECS_DEFAULT: u64 = 10;
pub const SWITCHOVER_MAX_LAG_SECS_DEFAULT: u64 = 30;
pub const SWITCHOVER_WAIT_TRX_SECS_DEFAULT: u64 = 5;
pub const BACKUP_BUSY_RATE_MIB_DEFAULT: f64 = 4.0;
pub const BACKUP_BUSY_CPUS_DEFAULT: f64 = 0.25;
/// Default `backups.busy_stretch`.
pub const BACKUP_BUSY_STRETCH_DEFAULT: f64 = 3.0;
pub const BACKUP_ATTEMPTS_DEFAULT: u32 = 3;

/// How endpoint traffic is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    /// nftables DNAT (needs CAP_NET_ADMIN).
    Kernel,
    /// TCP proxy inside the control plane.
    Userspace,
    /// Kernel when `nft` works, userspace otherwise.
    Auto,
}

impl std::str::FromStr for EndpointMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kernel" => Ok(EndpointMode::Kernel),
            "userspace" => Ok(EndpointMode::Userspace),
            "auto" => Ok(EndpointMode::Auto),
            other => Err(format!(
                "unknown endpoint mode {other:?}: use kernel, userspace or auto"
            )),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the REST API.
    pub listen: String,
    /// Where state, nodes and templates live.
    pub data_dir: PathBuf,
    pub endpoints: EndpointsConfig,
    pub nodes: NodesConfig,
    pub capacity: CapacityConfig,
    /// The hosts nodes run on.
    pub hosts: HostsConfig,
    pub quotas: QuotaConfig,
    pub limits: LimitsConfig,
    pub monitor: MonitorConfig,
    pub failover: FailoverConfig,
    pub audit: AuditConfig,
    pub backups: BackupsConfig,
    /// Serve `is-primary` / `is-replica` without authentication (for load balancers).
    pub public_health_checks: bool,
    /// The node-size catalog (replaces the default one when given).
    pub node_sizes: Vec<NodeSize>,
}

/// Where backups are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupsConfig {
    /// Directory of the local backup store (default `<data_dir>/backups`).
    pub dir: Option<PathBuf>,
    /// With binlog archiving, the primary's binlog is rotated and archived
    /// this often (the recovery point objective of point-in-time recovery).
    pub binlog_flush_secs: u64,
    /// An S3-compatible bucket instead of the local directory.
    pub s3: Option<marina_backup::S3Config>,
    /// While the host is busy, a backup of the primary reads at most this
    /// many MiB of its tool's stream per second (0: never limited; see
    /// `marina_backup::governor`).
    pub busy_rate_mib: f64,
    /// The host is busy while processes other than the backup, its source
    /// node and Marina use more than this many CPUs.
    pub busy_cpus: f64,
    /// A busy host stretches a backup of the primary (a replica's copy is
    /// not paced) to at most about this many times its full-speed duration:
    /// the first `1/busy_stretch` of every 2 s runs unlimited (0: never, the
    /// busy rate alone).
    pub busy_stretch: f64,
    /// A backup whose copy fails is tried this many times in all, each retry
    /// announced by a `backup_retry` event saying why.
    pub attempts: u32,
}

impl Default for BackupsConfig {
    fn default() -> Self {
        BackupsConfig {
            dir: None,
            binlog_flush_secs: 60,
            s3: None,
            busy_rate_mib: BACKUP_BUSY_RATE_MIB_DEFAULT,
            busy_cpus: BACKUP_BUSY_CPUS_DEFAULT,
            busy_stretch: BACKUP_BUSY_STRETCH_DEFAULT,
            attempts: BACKUP_ATTEMPTS_DEFAULT,
        }
    }
}

/// The audit log of mutating API calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Entries older than this are removed (checked hourly).
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { retention_days: 90 }
    }
}

/// Endpoint addresses and data path.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointsConfig {
    pub mode: EndpointMode,
    /// Pool writer addresses are taken from (loopback, so clients on this host
    /// reach them without any interface set-up).
    pub writer_pool: Ipv4Net,
    /// Pool reader addresses are taken from.
    pub reader_pool: Ipv4Net,
    /// Port of every endpoint.
    pub port: u16,
    /// nftables table owned by this instance (kernel mode).
    pub nft_table: String,
}

/// Node placement and MariaDB settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodesConfig {
    /// Address nodes listen on.
    pub bind_address: Ipv4Addr,
    /// Inclusive port range nodes get ports from.
    pub port_min: u16,
    pub port_max: u16,
    /// `rpl_semi_sync_master_timeout`: how long a commit waits for a replica's
    /// acknowledgement before the primary falls back to asynchronous replication.
    pub semisync_timeout_ms: u64,
    /// Deadline for a node to become ready.
    pub start_timeout_secs: u64,
    /// How often the supervisor checks node processes and endpoints.
    pub reconcile_interval_ms: u64,
    /// A directory of pre-initialised templates shared between data dirs (tests).
    pub template_cache: Option<PathBuf>,
    /// Run every node as root instead of one unprivileged uid per cluster.
    pub run_as_root: bool,
    /// Cluster uids are this plus the low 24 bits of the writer endpoint
    /// address (unique per live cluster); no passwd entries are needed.
    pub cluster_uid_base: u32,
    /// Name of the cgroup under which each node gets its own, limited to its
    /// size's memory and vCPUs (v2, else v1); empty: no limits.
    pub cgroup_parent: String,
}

/// The capacity check.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapacityConfig {
    /// Node memory may add up to this multiple of the host's RAM.
    pub memory_overcommit: f64,
    /// Overrides the detected host memory (GiB); for tests and shared hosts.
    pub host_memory_gib: Option<f64>,
    /// Space kept free on the data dir's file system for Marina's store,
    /// backups and operations: below it every cluster is held read-only.
    pub disk_reserve_gib: f64,
}

/// The hosts nodes run on (`marina serve` alone: its own machine).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostsConfig {
    /// The zone (failure domain) of this machine when it is registered as
    /// the local host (later changes are kept by the host's row).
    pub zone: String,
    /// How often the control plane calls each agent's heartbeat.
    pub heartbeat_ms: u64,
    /// An active agent host silent this long is marked `down`.
    pub down_after_ms: u64,
    /// The network a fleet's hosts and the control plane talk over: nodes
    /// admit Marina's management and replication accounts from it (none:
    /// from this machine only, the one-machine default).
    pub network: Option<Ipv4Net>,
    /// An agent fences its primaries (read-only, clients cut) when it has
    /// heard neither the control plane nor any of their peers for this
    /// long; keep it shorter than `nodes.semisync_timeout_ms` (a warning at
    /// start says when it is not), so no commit is acknowledged without a
    /// replica meanwhile.
    pub fence_after_ms: u64,
    /// The nodes of a host `down` this long (silent since its agent's last
    /// answer) are replaced on other hosts, keeping a cluster's nodes on
    /// distinct hosts (0: never; a host that returns first keeps them).
    pub replace_after_secs: u64,
}

impl Default for HostsConfig {
    fn default() -> Self {
        HostsConfig {
            zone: "local".into(),
            heartbeat_ms: 1000,
            down_after_ms: 5000,
            network: None,
            fence_after_ms: 3000,
            replace_after_secs: 300,
        }
    }
}

/// Request rate limits of the API, per source address and per token.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained requests per second allowed to one address and to one token.
    pub requests_per_second: f64,
    /// Requests allowed in a burst above the sustained rate.
    pub burst: f64,
    /// A client must send a request's headers (and finish a TLS handshake)
    /// within this; it is also how long an idle keep-alive connection stays open.
    pub header_timeout_ms: u64,
    /// A client must send a request's body within this after its headers (408).
    pub body_timeout_ms: u64,
    /// A response write that makes no progress for this long closes the
    /// connection (a client that stops reading cannot hold it).
    pub write_timeout_ms: u64,
    /// Open API connections at most; beyond it new ones wait in the kernel's
    /// backlog until one closes.
    pub max_connections: usize,
    /// Open API connections from one source (an IPv4 address, an IPv6 /64)
    /// at most; one more is closed at once.
    pub max_connections_per_source: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            requests_per_second: RATE_PER_SECOND_DEFAULT,
            burst: RATE_BURST_DEFAULT,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            write_timeout_ms: 10_000,
            max_connections: 1024,
            max_connections_per_source: 128,
        }
    }
}

/// Per-tenant quotas (each tenant gets these; 409 `quota_exceeded` beyond).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Live clusters per tenant.
    pub clusters: u32,
    /// Nodes per tenant, all clusters together.
    pub nodes: u32,
    /// Node memory per tenant in GiB, all clusters together.
    pub memory_gib: f64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            clusters: QUOTA_CLUSTERS_DEFAULT,
            nodes: QUOTA_NODES_DEFAULT,
            memory_gib: QUOTA_MEMORY_GIB_DEFAULT,
        }
    }
}

/// The health monitor and failure detection.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// How often every node is probed.
    pub interval_ms: u64,
    /// A probe slower than this counts as failed.
    pub probe_timeout_ms: u64,
    /// The primary is failed only after probes have failed for this long…
    pub failure_window_ms: u64,
    /// …and every reachable replica has heard nothing from it (no event, no
    /// heartbeat) for this long, or lost its connection.
    pub witness_silence_ms: u64,
    /// Replicas lagging more than this leave the reader endpoint.
    pub max_reader_lag_secs: u64,
    /// How often each node's directory is measured against its disk quota.
    pub disk_check_interval_ms: u64,
}

/// Automatic failover, its anti-flapping guard, and switchover limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailoverConfig {
    /// A crash loop stops after this many failovers (`monitor/flapping.rs`).
    pub limit: u32,
    /// How far back the failovers of a crash loop are looked for.
    pub window_secs: u64,
    /// A primary that fails sooner than this after its promotion continues a
    /// crash loop; one that served longer is failed over at once.
    pub min_interval_secs: u64,
    /// How long the elected replica gets to apply its relay log.
    pub relay_apply_timeout_secs: u64,
    /// A switchover is refused when the target lags more than this.
    pub switchover_max_lag_secs: u64,
    /// A switchover waits this long for open transactions, then kills them.
    pub switchover_wait_trx_secs: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            interval_ms: MONITOR_INTERVAL_MS_DEFAULT,
            probe_timeout_ms: PROBE_TIMEOUT_MS_DEFAULT,
            failure_window_ms: FAILURE_WINDOW_MS_DEFAULT,
            witness_silence_ms: WITNESS_SILENCE_MS_DEFAULT,
            max_reader_lag_secs: MAX_READER_LAG_SECS_DEFAULT,
            disk_check_interval_ms: 5_000,
        }
    }
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            limit: FAILOVER_LIMIT_DEFAULT,
            window_secs: FAILOVER_WINDOW_SECS_DEFAULT,
            min_interval_secs: FAILOVER_MIN_INTERVAL_SECS_DEFAULT,
            relay_apply_timeout_secs: RELAY_APPLY_TIMEOUT_SECS_DEFAULT,
            switchover_max_lag_secs: SWITCHOVER_MAX_LAG_SECS_DEFAULT,
            switchover_wait_trx_secs: SWITCHOVER_WAIT_TRX_SECS_DEFAULT,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: LISTEN_DEFAULT.into(),
            data_dir: DATA_DIR_DEFAULT.into(),
            endpoints: EndpointsConfig::default(),
            nodes: NodesConfig::default(),
            capacity: CapacityConfig::default(),
            hosts: HostsConfig::default(),
            quotas: QuotaConfig::default(),
            limits: LimitsConfig::default(),
            monitor: MonitorConfig::default(),
            failover: FailoverConfig::default(),
            audit: AuditConfig::default(),
            backups: BackupsConfig::default(),
            public_health_checks: false,
            node_sizes: Vec::new(),
        }
    }
}

impl Default for EndpointsConfig {
    fn default() -> Self {
        EndpointsConfig {
            mode: EndpointMode::Auto,
            writer_pool: WRITER_POOL_DEFAULT.parse().expect("valid default"),
            reader_pool: READER_POOL_DEFAULT.parse().expect("valid default"),
            port: ENDPOINT_PORT_DEFAULT,
            nft_table: NFT_TABLE_DEFAULT.into(),
        }
    }
}

/// First uid of the per-cluster node uids (far above any distribution's range).
pub const CLUSTER_UID_BASE_DEFAULT: u32 = 1_500_000_000;

impl Default for NodesConfig {
    fn default() -> Self {
        NodesConfig {
            bind_address: Ipv4Addr::LOCALHOST,
            port_min: PORT_MIN_DEFAULT,
            port_max: PORT_MAX_DEFAULT,
            semisync_timeout_ms: SEMISYNC_TIMEOUT_MS_DEFAULT,
            start_timeout_secs: START_TIMEOUT_SECS_DEFAULT,
            reconcile_interval_ms: RECONCILE_INTERVAL_MS_DEFAULT,
            template_cache: None,
            run_as_root: false,
            cluster_uid_base: CLUSTER_UID_BASE_DEFAULT,
            cgroup_parent: "marina".into(),
        }
    }
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            memory_overcommit: MEMORY_OVERCOMMIT_DEFAULT,
            host_memory_gib: None,
            disk_reserve_gib: 1.0,
        }
    }
}

impl Config {
    /// Parses a TOML configuration and checks it.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    /// Makes every path of the configuration absolute against `base` (the
    /// directory `marina serve` started in), once, at start-up: node
    /// processes and tools run in their own directories, where a relative
    /// path would name something else.
    pub fn absolutize(&mut self, base: &Path) {
        self.data_dir = absolute(base, &self.data_dir);
        for p in [&mut self.backups.dir, &mut self.nodes.template_cache]
            .into_iter()
            .flatten()
        {
            *p = absolute(base, p);
        }
    }

    /// Checks cross-field rules.
    pub fn validate(&self) -> Result<(), String> {
        if self.backups.dir.is_some() && self.backups.s3.is_some() {
            return Err("set either backups.dir (a local directory) or [backups.s3], not both".into());
        }
        let b = &self.backups;
        if !(b.busy_rate_mib >= 0.0 && b.busy_rate_mib.is_finite() && b.busy_cpus.is_finite()) {
            return Err("backups.busy_rate_mib must be 0 or more and backups.busy_cpus a number".into());
        }
        if !(b.busy_stretch == 0.0 || (b.busy_stretch > 1.0 && b.busy_stretch.is_finite())) {
            return Err("backups.busy_stretch must be 0 (off) or a number above 1".into());
        }
        if self.audit.retention_days == 0 {
            return Err("audit.retention_days must be at least 1".into());
        }
        if self.limits.header_timeout_ms < 100
            || self.limits.body_timeout_ms < 100
            || self.limits.write_timeout_ms < 100
        {
            return Err(
                "limits.header_timeout_ms, limits.body_timeout_ms and limits.write_timeout_ms must be at least 100"
                    .into(),
            );
        }
        if self.backups.attempts == 0 {
            return Err("backups.attempts must be at least 1".into());
        }
        if self.limits.max_connections == 0 || self.limits.max_connections_per_source == 0 {
            return Err("limits.max_connections and limits.max_connections_per_source must be at least 1".into());
        }
        let cg = &self.nodes.cgroup_parent;
        if cg.len() > 64 || !cg.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) || cg.starts_with('.') {
            return Err("nodes.cgroup_parent must be empty or a plain name of letters, digits, _ . -".into());
        }
        if self.nodes.cluster_uid_base < 65536 || self.nodes.cluster_uid_base > u32::MAX - 0x0100_0000 {
            return Err("nodes.cluster_uid_base must leave room for 2^24 uids above 65535".into());
        }
        if !(500..=600_000).contains(&self.hosts.fence_after_ms) {
            return Err("hosts.fence_after_ms must be 500 to 600000".into());
        }
        if self.nodes.port_min == 0 || self.nodes.port_min > self.nodes.port_max {
            return Err("nodes.port_min must be between 1 and nodes.port_max".into());
        }
        let loopback =
            self.endpoints.writer_pool.addr().is_loopback() && self.endpoints.reader_pool.addr().is_loopback();
        if !loopback && self.hosts.network.is_none() {
            return Err(
                "endpoint pools must be inside 127.0.0.0/8 on a single host (a fleet with hosts.network set may \
                 use routable pools, programmed on every agent host)"
                    .into(),
            );
        }
        if self.endpoints.writer_pool.contains(&self.endpoints.reader_pool)
            || self.endpoints.reader_pool.contains(&self.endpoints.writer_pool)
        {
            return Err("endpoints.writer_pool and endpoints.reader_pool must not overlap".into());
        }
        if self.endpoints.nft_table.is_empty()
            || !self
                .endpoints
                .nft_table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err("endpoints.nft_table must be letters, digits and '_'".into());
        }
        if self.monitor.interval_ms == 0 || self.monitor.probe_timeout_ms == 0 {
            return Err("monitor.interval_ms and monitor.probe_timeout_ms must be positive".into());
        }
        if self.limits.requests_per_second <= 0.0 || self.limits.burst < 1.0 {
            return Err("limits.requests_per_second must be positive and limits.burst at least 1".into());
        }
        if self.capacity.memory_overcommit <= 0.0 {
            return Err("capacity.memory_overcommit must be positive".into());
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.node_sizes {
            let id_ok = !s.id.is_empty()
                && s.id.len() <= 63
                && s.id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return Err(format!(
                    "node_sizes: id {:?} must be lowercase letters, digits and '-'",
                    s.id
                ));
            }
            if !seen.insert(&s.id) {
                return Err(format!("node_sizes: {:?} is listed twice", s.id));
            }
            if s.memory <= 0.0 || s.vcpu == 0 {
                return Err(format!("node_sizes: {:?} needs positive vcpu and memory", s.id));
            }
        }
        Ok(())
    }

    /// The node-size catalog in effect.
    pub fn catalog(&self) -> Vec<NodeSize> {
        if self.node_sizes.is_empty() {
            default_catalog()
        } else {
            self.node_sizes
                .iter()
                .cloned()
                .map(|s| s.with_default_title())
                .collect()
        }
    }
}

/// `p` against `base` when relative, without `.` components (`..` kept:
/// it may cross a link).
pub fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    joined
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../../deploy/marina.example.toml");
        let c = Config::from_toml(text).expect("example config is valid");
        assert_eq!(c.listen, LISTEN_DEFAULT);
        assert_eq!(c.endpoints.mode, EndpointMode::Auto);
        assert_eq!(c.catalog().len(), 6);
        assert_eq!(c.catalog()[1].title, "Small: 2 cores, 2 GiB");
    }

    #[test]
    fn empty_config_is_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.nodes.port_min, PORT_MIN_DEFAULT);
        assert_eq!(c.catalog(), default_catalog());
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(Config::from_toml("listen = 3").is_err());
        assert!(Config::from_toml("bogus = 1").is_err());
        assert!(Config::from_toml("[backups]\nattempts = 0").is_err());
        assert!(Config::from_toml("[nodes]\nport_min = 500\nport_max = 400").is_err());
        assert!(Config::from_toml("[endpoints]\nwriter_pool = \"10.0.0.0/24\"").is_err());
        assert!(Config::from_toml("[endpoints]\nmode = \"magic\"").is_err());
    }

    #[test]
    fn relative_paths_become_absolute_once() {
        let base = Path::new("/srv/run");
        // (given, resolved)
        let table = [
            ("./marina-data", "/srv/run/marina-data"),
            ("marina-data", "/srv/run/marina-data"),
            ("../data/./m", "/srv/run/../data/m"),
            ("/var/lib/marina", "/var/lib/marina"),
        ];
        for (given, want) in table {
            assert_eq!(absolute(base, Path::new(given)), PathBuf::from(want), "{given}");
        }
        let mut c =
            Config::from_toml("data_dir = \"d\"\n[backups]\ndir = \"./b\"\n[nodes]\ntemplate_cache = \"t\"\n").unwrap();
        c.absolutize(base);
        c.absolutize(Path::new("/elsewhere"));
        assert_eq!(c.data_dir, PathBuf::from("/srv/run/d"));
        assert_eq!(c.backups.dir, Some(PathBuf::from("/srv/run/b")));
        assert_eq!(c.nodes.template_cache, Some(PathBuf::from("/srv/run/t")));
    }
}
