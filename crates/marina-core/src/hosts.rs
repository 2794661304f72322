//! Hosts: the machines nodes run on. `marina serve` alone has one, its own
//! machine, registered at start as the `local` host (no agent); agents on
//! other machines join later (issue 23). Operators cordon a host (it keeps
//! its nodes, takes no new one), uncordon it, or drain it.
//!
//! Placement (`place`): nodes spread over zones, then hosts, within each
//! host's memory (`placement::spread`). A request's `placement` is `spread`
//! (no two nodes of a cluster on one host: refused when the hosts cannot
//! hold that) or `best_effort` (hosts shared when they must be). Without
//! one, a fleet of two or more active hosts spreads, and a lone host — the
//! one-machine default — takes every node.

use std::collections::HashMap;

use marina_common::model::*;
use marina_common::{Error, ids, time_fmt};

use crate::Marina;
use crate::placement::{self, HostSlot};

/// Where placement put a new node.
#[derive(Debug, Clone)]
pub struct Placed {
    pub host_id: String,
    pub zone: String,
    /// The address the node listens on: its agent host's (`None` on the
    /// local host: `nodes.bind_address`).
    pub address: Option<String>,
}

/// A host with what runs on it.
#[derive(Debug, Clone)]
pub struct HostUsage {
    pub host: HostRecord,
    pub nodes: u32,
    pub memory_used_bytes: u64,
}

impl Marina {
    /// Registers this machine as the local host (or refreshes its facts)
    /// and assigns it every node without a host.
    pub async fn register_local_host(&self) -> Result<HostRecord, Error> {
        let now = time_fmt::now_rfc3339();
        let gib = self
            .config
            .capacity
            .host_memory_gib
            .unwrap_or_else(placement::host_memory_gib);
        let facts = HostRecord {
            id: ids::new_id(ids::prefix::HOST),
            object: "host",
            name: hostname(),
            zone: self.config.hosts.zone.clone(),
            address: self.config.nodes.bind_address.to_string(),
            status: HostStatus::Active,
            local: true,
            memory_bytes: (gib * (1u64 << 30) as f64) as u64,
            disk_bytes: crate::monitor::disk::total_bytes(&self.config.data_dir).unwrap_or(0),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            version: env!("CARGO_PKG_VERSION").into(),
            agent_port: None,
            seen_at: None,
            created_at: now.clone(),
            updated_at: now,
        };
        let host = self.store.ensure_local_host(&facts).await?;
        self.set_local_host(&host.id);
        Ok(host)
    }

    /// Every host with its nodes and the memory they take.
    pub async fn list_hosts(&self) -> Result<Vec<HostUsage>, Error> {
        let mut usage: HashMap<String, (u32, u64)> = HashMap::new();
        for (host, _, _, size) in self.store.nodes_by_host().await? {
            let e = usage.entry(host).or_default();
            e.0 += 1;
            e.1 += self.size(&size).map_or(0, |s| (s.memory * (1u64 << 30) as f64) as u64);
        }
        Ok(self
            .store
            .list_hosts()
            .await?
            .into_iter()
            .map(|host| {
                let (nodes, memory_used_bytes) = usage.get(&host.id).copied().unwrap_or_default();
                HostUsage {
                    host,
                    nodes,
                    memory_used_bytes,
                }
            })
            .collect())
    }

    pub async fn get_host(&self, id: &str) -> Result<HostUsage, Error> {
        self.list_hosts()
            .await?
            .into_iter()
            .find(|h| h.host.id == id)
            .ok_or_else(|| Error::not_found("host", id))
    }

    /// Cordons an active host (new nodes go elsewhere; its nodes stay).
    pub async fn cordon_host(&self, id: &str) -> Result<HostUsage, Error> {
        self.host_status(id, &[HostStatus::Active, HostStatus::Cordoned], HostStatus::Cordoned)
            .await
    }

    /// Uncordons a cordoned or draining host: it takes new nodes again.
    pub async fn uncordon_host(&self, id: &str) -> Result<HostUsage, Error> {
        self.host_status(
            id,
            &[HostStatus::Cordoned, HostStatus::Draining, HostStatus::Active],
            HostStatus::Active,
        )
        .await
    }

    /// Drains a host: it takes no new node, and the drain task moves its
    /// nodes to other hosts (`drain`: one `move_node` operation per node,
    /// the primary switched over to its replacement); `nodes` reaches 0
    /// when it is done. A host with nodes and no other active host to take
    /// them is refused.
    pub async fn drain_host(&self, id: &str) -> Result<HostUsage, Error> {
        let h = self.get_host(id).await?;
        let others = self
            .store
            .list_hosts()
            .await?
            .iter()
            .filter(|o| o.id != id && o.status == HostStatus::Active)
            .count();
        if h.nodes > 0 && others == 0 {
            return Err(Error::Conflict(format!(
                "host {id} runs {} node(s) and no other host is active to take them",
                h.nodes
            )));
        }
        self.host_status(
            id,
            &[HostStatus::Active, HostStatus::Cordoned, HostStatus::Draining],
            HostStatus::Draining,
        )
        .await
    }

    async fn host_status(&self, id: &str, from: &[HostStatus], to: HostStatus) -> Result<HostUsage, Error> {
        let h = self.get_host(id).await?;
        if !self
            .store
            .set_host_status(id, from, to, &time_fmt::now_rfc3339())
            .await?
        {
            return Err(Error::Conflict(format!(
                "host {id} is {}: it cannot become {to}",
                h.host.status
            )));
        }
        self.get_host(id).await
    }

    /// Hosts for `n` new nodes of `size` of a cluster whose nodes are
    /// `existing`, by the request's `policy` (see the module). Nodes that
    /// start from a backup in a local store (`data_in`: a restore that only
    /// this machine can read) go to the local host only; `spread` is then
    /// not the default.
    pub(crate) async fn place(
        &self,
        n: usize,
        size: &marina_common::size::NodeSize,
        existing: &[NodeRecord],
        policy: Option<Placement>,
        data_in: bool,
    ) -> Result<Vec<Placed>, Error> {
        let hosts = self.list_hosts().await?;
        let overcommit = self.config.capacity.memory_overcommit;
        let slots: Vec<HostSlot> = hosts
            .iter()
            .map(|h| HostSlot {
                id: h.host.id.clone(),
                zone: h.host.zone.clone(),
                schedulable: h.host.status == HostStatus::Active && (h.host.local || !data_in),
                free_bytes: (h.host.memory_bytes as f64 * overcommit) as i64 - h.memory_used_bytes as i64,
                taken: existing
                    .iter()
                    .filter(|e| e.host_id.as_deref() == Some(&h.host.id))
                    .count() as u32,
            })
            .collect();
        let active = slots.iter().filter(|s| s.schedulable).count();
        let strict = match policy {
            Some(p) => p == Placement::Spread,
            None => active >= 2,
        };
        let need = (size.memory * (1u64 << 30) as f64) as u64;
        let ids = placement::spread(n, need, &slots, strict).map_err(Error::CapacityExceeded)?;
        ids.into_iter()
            .map(|id| {
                let h = hosts
                    .iter()
                    .find(|h| h.host.id == id)
                    .ok_or_else(|| Error::internal("placement chose an unknown host"))?;
                Ok(Placed {
                    zone: h.host.zone.clone(),
                    address: (!h.host.local).then(|| h.host.address.clone()),
                    host_id: id,
                })
            })
            .collect()
    }
}

/// A join token's secret: this prefix and 64 hex characters.
pub const JOIN_TOKEN_PREFIX: &str = "mrn_join_";

/// What a joining agent gets back.
#[derive(Debug, Clone)]
pub struct Joined {
    pub host: HostRecord,
    /// Its client (and server) certificate, signed by the control plane's CA.
    pub certificate_pem: String,
    /// The CA certificate it trusts the control plane and other agents by.
    pub ca_pem: String,
}

/// `^[a-z0-9][a-z0-9-]{0,62}$` (zones) or, with dots, host names.
fn check_label(what: &str, v: &str, dots: bool) -> Result<(), Error> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.'));
    if ok {
        return Ok(());
    }
    let chars = if dots {
        "a-z, 0-9, '-' and '.'"
    } else {
        "a-z, 0-9 and '-'"
    };
    Err(Error::InvalidRequest(format!(
        "{what} must be 1 to 63 characters of {chars}, starting with a letter or digit"
    )))
}

impl Marina {
    /// A one-time join token (its secret is returned once, only its hash kept).
    pub async fn create_join_token(&self, input: CreateJoinTokenInput) -> Result<(JoinToken, String), Error> {
        if let Some(z) = &input.zone {
            check_label("zone", z, false)?;
        }
        let ttl = input.ttl_secs.unwrap_or(3600);
        if !(60..=604_800).contains(&ttl) {
            return Err(Error::InvalidRequest("ttl_secs must be 60 to 604800".into()));
        }
        let now = time::OffsetDateTime::now_utc();
        let token = JoinToken {
            id: ids::new_id(ids::prefix::JOIN_TOKEN),
            object: "join_token",
            zone: input.zone,
            created_at: time_fmt::format_rfc3339(now),
            expires_at: time_fmt::format_rfc3339(now + time::Duration::seconds(ttl as i64)),
            used_at: None,
            host_id: None,
        };
        let secret = format!("{JOIN_TOKEN_PREFIX}{}", ids::random_secret(32));
        self.store
            .create_join_token(&token, &crate::secrets::hash_token(&secret))
            .await?;
        Ok((token, secret))
    }

    /// An agent joins with a join token: its host is added (`down` until
    /// its agent answers a heartbeat over mutual TLS) and gets a certificate
    /// for its public key. A token is used once, before it expires; any
    /// other is 401.
    pub async fn join_host(&self, input: JoinHostInput) -> Result<Joined, Error> {
        use base64::Engine;
        check_label("name", &input.name, true)?;
        if let Some(z) = &input.zone {
            check_label("zone", z, false)?;
        }
        let address: std::net::IpAddr = input
            .address
            .parse()
            .map_err(|_| Error::InvalidRequest("address must be an IPv4 or IPv6 address".into()))?;
        if input.cpus == 0 || input.cpus > 4096 || input.memory_bytes == 0 || input.memory_bytes > 1 << 50 {
            return Err(Error::InvalidRequest(
                "cpus must be 1 to 4096 and memory_bytes 1 to 2^50".into(),
            ));
        }
        if input.disk_bytes > 1 << 60 {
            return Err(Error::InvalidRequest("disk_bytes must be at most 2^60".into()));
        }
        if input.version.is_empty() || input.version.len() > 64 || !input.version.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::InvalidRequest(
                "version must be 1 to 64 printable characters".into(),
            ));
        }
        let public_key = base64::engine::general_purpose::STANDARD
            .decode(input.public_key.as_bytes())
            .map_err(|_| Error::InvalidRequest("public_key must be base64".into()))?;
        let refused = || Error::Unauthenticated("the join token is unknown, used or expired".into());
        let hex = input.join_token.strip_prefix(JOIN_TOKEN_PREFIX).ok_or_else(refused)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(refused());
        }
        let now = time_fmt::now_rfc3339();
        let host = HostRecord {
            id: ids::new_id(ids::prefix::HOST),
            object: "host",
            name: input.name,
            zone: input.zone.unwrap_or_else(|| "default".into()),
            address: address.to_string(),
            status: HostStatus::Down,
            local: false,
            memory_bytes: input.memory_bytes,
            disk_bytes: input.disk_bytes,
            cpus: input.cpus,
            version: input.version,
            agent_port: Some(match input.agent_port {
                Some(0) => return Err(Error::InvalidRequest("agent_port must be 1 to 65535".into())),
                p => p.unwrap_or(marina_agent::server::DEFAULT_PORT),
            }),
            seen_at: None,
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        // The certificate first: a key it refuses uses no token.
        let certificate_pem = self.ca.issue_agent_cert(&host.id, &public_key)?;
        self.store
            .join_host(&crate::secrets::hash_token(&input.join_token), &now, &host)
            .await?
            .ok_or_else(refused)?;
        let host = self
            .store
            .get_host(&host.id)
            .await?
            .ok_or_else(|| Error::internal("a joined host vanished"))?;
        Ok(Joined {
            host,
            certificate_pem,
            ca_pem: self.ca.cert_pem().to_string(),
        })
    }
}

/// This machine's name, as a host name the API accepts (`host_label`).
pub fn hostname() -> String {
    host_label(&std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default())
}

/// `raw` as a host name the API accepts: lower case, any character but
/// a-z, 0-9, `.` and `-` made `-`, at most 63; `localhost` when nothing
/// usable is left.
fn host_label(raw: &str) -> String {
    let name: String = raw
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    match name.bytes().next() {
        Some(b) if b.is_ascii_alphanumeric() => name,
        _ => "localhost".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_made_acceptable() {
        for (raw, want) in [
            ("db-1.example\n", "db-1.example"),
            ("Web_Server 2", "web-server-2"),
            ("", "localhost"),
            ("-x", "localhost"),
            ("\u{e9}t\u{e9}", "localhost"),
        ] {
            let got = host_label(raw);
            assert_eq!(got, want, "{raw:?}");
            assert!(check_label("name", &got, true).is_ok(), "{got}");
        }
        assert_eq!(host_label(&"a".repeat(100)).len(), 63);
    }
}
