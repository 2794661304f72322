//! The kernel data path: DNAT rules in an nftables table owned by this Marina
//! instance (default name `marina`), replaced whole on every apply.
//!
//! Refused connections are recorded by the kernel in a dynamic set `refused`
//! keyed by target address, port and source, with a counter per element
//! (entries expire after an hour without refusals). Recording is a rule of its
//! own before the verdict rule, so a full set can never let a connection
//! through. Replacing the table empties the set, so every apply first folds the
//! set's counts into totals kept here. Admitted connections are counted the
//! same way in a set `accepted` keyed by endpoint address and port.
//!
//! Connections through an endpoint leave conntrack's `TIME_WAIT` after
//! `TIME_WAIT_SECS` (a `ct timeout` object of the table) instead of the host's
//! 120 s: at 2,000 new connections a second, 120 s of closed connections fill
//! the default table (262,144 entries), and a new connection then finds no
//! entry to evict (closed ones are "assured") and is dropped. With 10 s the
//! table holds 26,000 new connections a second. (`marina-bench endpoints`, a
//! connection per query, does not fill it: there the kernel path ran at
//! 0.56-0.88 x direct before and 0.64-0.95 x after, within its noise; its
//! added p99 of 8-12 ms at 100 connections/s is not conntrack's — no drops,
//! clashes or failed inserts — and is not explained yet.) A kernel without
//! conntrack timeout objects gets the rules without it (logged once).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddrV4};

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::{DataPath, EndpointError, EndpointPlan, RefusalCount};
#[cfg(test)]
use crate::{Fence, NodeGuard, Route};

type RefusalKey = (SocketAddrV4, IpAddr);

/// Counts folded from a kernel set.
struct Tally<K> {
    /// Totals since this data path was created.
    total: HashMap<K, u64>,
    /// What the live set held at the last read (its counts are cumulative).
    seen: HashMap<K, u64>,
}

impl<K> Default for Tally<K> {
    fn default() -> Self {
        Tally {
            total: HashMap::new(),
            seen: HashMap::new(),
        }
    }
}

/// The refused and the accepted tallies, and the fences last applied.
#[derive(Default)]
struct Tallies {
    refused: Tally<RefusalKey>,
    accepted: Tally<SocketAddrV4>,
    fenced: Vec<crate::Fence>,
}

impl<K: std::hash::Hash + Eq + Copy> Tally<K> {
    fn fold(&mut self, live: Vec<(K, u64)>) {
        for (key, count) in live {
            let before = self.seen.insert(key, count).unwrap_or(0);
            // A smaller count is a new element (the old one expired).
            let delta = if count >= before { count - before } else { count };
            *self.total.entry(key).or_default() += delta;
        }
    }
}

/// How long a closed connection through an endpoint stays in conntrack's
/// `TIME_WAIT` (see the module doc). A late segment of a closed connection
/// arriving after it is no longer matched; endpoints' clients reach them
/// over loopback or a local network, where segments are not seconds late.
pub const TIME_WAIT_SECS: u32 = 10;

/// nftables DNAT data path.
pub struct NftDataPath {
    /// Name of the `ip` table Marina owns.
    table: String,
    /// Cleared when the kernel refused the table's `ct timeout` object.
    ct_timeout: std::sync::atomic::AtomicBool,
    /// Endpoints also for clients of other machines (a host agent's data
    /// path): DNAT in `prerouting` too, admission, fences and exclusivity
    /// in `forward` too, and connections forwarded to a node on another
    /// host masqueraded (so its replies come back through this host).
    forwarding: bool,
    /// Serialises applies so two transactions never interleave; guards the
    /// refusal counts, which an apply resets in the kernel.
    lock: tokio::sync::Mutex<Tallies>,
}

/// Records a refused connection's target and source in the `refused` set.
const RECORD: &str = "update @refused { ct original ip daddr . ct original proto-dst . ip saddr }";
/// Records an admitted connection's endpoint in the `accepted` set.
const RECORD_ACCEPTED: &str = "update @accepted { ct original ip daddr . ct original proto-dst }";

impl NftDataPath {
    pub fn new(table: impl Into<String>) -> Self {
        NftDataPath {
            table: table.into(),
            ct_timeout: std::sync::atomic::AtomicBool::new(true),
            forwarding: false,
            lock: tokio::sync::Mutex::new(Tallies::default()),
        }
    }

    /// Serves clients of other machines too (see `forwarding`); the caller
    /// enables IPv4 forwarding on the host.
    pub fn forwarding(mut self) -> Self {
        self.forwarding = true;
        self
    }

    /// `nft -j list set` of one of the table's sets (`None` when the table
    /// or the set does not exist).
    async fn read_set(&self, set: &str) -> Result<Option<Vec<u8>>, EndpointError> {
        let out = tokio::process::Command::new("nft")
            .args(["-j", "list", "set", "ip", &self.table, set])
            .output()
            .await
            .map_err(|e| EndpointError::Nft(format!("cannot run nft: {e}")))?;
        Ok(out.status.success().then_some(out.stdout))
    }

    /// Reads the `refused` set.
    async fn read_refused(&self) -> Result<Vec<(RefusalKey, u64)>, EndpointError> {
        Ok(self
            .read_set("refused")
            .await?
            .map(|j| parse_refused(&j))
            .unwrap_or_default())
    }

    /// Reads the `accepted` set.
    async fn read_accepted(&self) -> Result<Vec<(SocketAddrV4, u64)>, EndpointError> {
        Ok(self
            .read_set("accepted")
            .await?
            .map(|j| parse_accepted(&j))
            .unwrap_or_default())
    }

    /// The `nft -f` script that makes the table hold exactly `routes`: DNAT in a
    /// `nat` chain, and in a `filter` chain a guard that resets connections of
    /// an exclusive route whose backend is not the current one (established
    /// ones included: conntrack remembers the endpoint they were opened to) and
    /// every connection to a route without backends.
    pub fn render(&self, plan: &EndpointPlan) -> String {
        self.render_with(plan, self.ct_timeout.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// `render`, with or without the short conntrack `TIME_WAIT`.
    fn render_with(&self, plan: &EndpointPlan, ct_timeout: bool) -> String {
        let t = &self.table;
        let routes = &plan.routes;
        // Create-then-delete makes the delete valid whether or not it existed.
        let mut s = format!("table ip {t}\ndelete table ip {t}\n");
        if routes.is_empty() && plan.guards.is_empty() && plan.fenced.is_empty() {
            return s;
        }
        s.push_str(&format!(
            "table ip {t} {{\n  set refused {{\n    type ipv4_addr . inet_service . ipv4_addr; size 65535; flags dynamic, timeout; timeout 1h; counter;\n  }}\n"
        ));
        s.push_str("  set accepted {\n    type ipv4_addr . inet_service; size 65535; flags dynamic; counter;\n  }\n");
        let timeout = if ct_timeout {
            s.push_str(&format!(
                "  ct timeout endpoint {{\n    protocol tcp; l3proto ip; policy = {{ time_wait: {TIME_WAIT_SECS} }}\n  }}\n"
            ));
            "ct timeout set \"endpoint\" "
        } else {
            ""
        };
        let mut dnat = String::new();
        // Forwarded connections to an endpoint that leads nowhere now (a
        // failover, a switchover's pause): taken in (`redirect`) and reset in
        // the input chain. Left alone, the host has no route for the endpoint
        // address: its ICMP answer is rate-limited, the SYN vanishes, and the
        // client retries a second later (the longest pause of a host loss
        // was ~0.7 s longer for it).
        let mut nowhere_in = String::new();
        let mut refuse_in = String::new();
        for r in routes {
            let (ip, port) = (r.listen.ip(), r.listen.port());
            match r.backends.as_slice() {
                [] => {
                    nowhere_in.push_str(&format!("    ip daddr {ip} tcp dport {port} redirect to :{port}\n"));
                    refuse_in.push_str(&format!(
                        "    meta l4proto tcp ct original ip daddr {ip} ct original proto-dst {port} reject with tcp reset\n"
                    ));
                }
                [one] => dnat.push_str(&format!("    ip daddr {ip} tcp dport {port} {timeout}dnat to {one}\n")),
                many => {
                    let map: Vec<String> = many
                        .iter()
                        .enumerate()
                        .map(|(i, b)| format!("{i} : {} . {}", b.ip(), b.port()))
                        .collect();
                    dnat.push_str(&format!(
                        "    ip daddr {ip} tcp dport {port} {timeout}dnat to numgen inc mod {} map {{ {} }}\n",
                        many.len(),
                        map.join(", ")
                    ));
                }
            }
        }
        s.push_str(&format!(
            "  chain endpoints {{\n    type nat hook output priority -100; policy accept;\n{dnat}  }}\n"
        ));
        let mut filter = String::new();
        let mut local_only = String::new();
        // Fenced nodes first: nothing reaches them or leaves them over TCP
        // (the reset makes a replica's or client's wait end at once) — but
        // the control plane's own traffic to a node it manages over TCP.
        let (fence_out, fence_fwd, mut incoming) = fences(plan);
        // Admission: a new connection to an endpoint must come from an allowed
        // source (security groups); anything else is reset.
        for r in routes {
            let (ip, port) = (r.listen.ip(), r.listen.port());
            let m = format!("ct state new meta l4proto tcp ct original ip daddr {ip} ct original proto-dst {port}");
            let nets = ipnet::Ipv4Net::aggregate(&r.allowed);
            // Sources outside the security groups are recorded, then reset;
            // a route without backends resets everyone (without recording).
            let refused = if nets.is_empty() {
                m.clone()
            } else {
                let set: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
                format!("{m} ip saddr != {{ {} }}", set.join(", "))
            };
            filter.push_str(&format!("    {refused} {RECORD}\n"));
            let reset = if r.backends.is_empty() { &m } else { &refused };
            filter.push_str(&format!("    {reset} reject with tcp reset\n"));
            if !r.backends.is_empty() {
                filter.push_str(&format!("    {m} {RECORD_ACCEPTED}\n"));
            }
        }
        // Exclusivity: once an exclusive route leads somewhere, established
        // connections it no longer leads to are reset. A route without backends
        // (a failover or switchover in progress) only refuses new connections —
        // the admission rule above does that — and leaves established ones to
        // the operation, which fences or demotes the node they reach.
        for r in routes.iter().filter(|r| r.exclusive && !r.backends.is_empty()) {
            let (ip, port) = (r.listen.ip(), r.listen.port());
            let m = format!(
                "ct direction original meta l4proto tcp ct original ip daddr {ip} ct original proto-dst {port}"
            );
            for b in &r.backends {
                filter.push_str(&format!("    {m} ip daddr {} tcp dport {} accept\n", b.ip(), b.port()));
            }
            filter.push_str(&format!("    {m} reject with tcp reset\n"));
        }
        // Node ports: only the guard's uids (the control plane and the
        // cluster's own nodes) may connect directly; connections through an
        // endpoint were DNATed, so their original destination is the endpoint
        // and these rules do not see them. Others' packets are dropped.
        // From other machines, only the guard's peers (an agent host's:
        // the fleet's hosts and the control plane).
        for g in &plan.guards {
            if g.ports.is_empty() {
                continue;
            }
            let ports: Vec<String> = g.ports.iter().map(|p| p.to_string()).collect();
            let to = format!(
                "ct state new meta l4proto tcp ct original ip daddr {} ct original proto-dst {{ {} }}",
                g.host,
                ports.join(", ")
            );
            if !g.uids.is_empty() {
                let uids: Vec<String> = g.uids.iter().map(|u| u.to_string()).collect();
                let m = format!("{to} meta skuid != {{ {} }}", uids.join(", "));
                local_only.push_str(&format!("    {m} {RECORD}\n    {m} drop\n"));
            }
            let peers = ipnet::Ipv4Net::aggregate(&g.peers);
            if !peers.is_empty() {
                let set: Vec<String> = peers.iter().map(|n| n.to_string()).collect();
                let m = format!("{to} ip saddr != {{ {} }}", set.join(", "));
                incoming.push_str(&format!("    {m} {RECORD}\n    {m} drop\n"));
            }
        }
        s.push_str(&format!(
            "  chain guard {{\n    type filter hook output priority 0; policy accept;\n{fence_out}{filter}{local_only}  }}\n"
        ));
        if self.forwarding {
            incoming.push_str(&refuse_in);
        }
        if !incoming.is_empty() {
            s.push_str(&format!(
                "  chain guard_host {{\n    type filter hook input priority 0; policy accept;\n{incoming}  }}\n"
            ));
        }
        if self.forwarding {
            // Clients of other machines: the same DNAT before routing, the
            // same admission, fences and exclusivity on forwarded packets,
            // and the source made this host's for a node elsewhere.
            let listens: Vec<String> = routes.iter().map(|r| r.listen.ip().to_string()).collect();
            s.push_str(&format!(
                "  chain endpoints_in {{\n    type nat hook prerouting priority -100; policy accept;\n{dnat}{nowhere_in}  }}\n"
            ));
            s.push_str(&format!(
                "  chain guard_in {{\n    type filter hook forward priority 0; policy accept;\n{fence_fwd}{filter}  }}\n"
            ));
            if !listens.is_empty() {
                s.push_str(&format!(
                    "  chain endpoints_out {{\n    type nat hook postrouting priority 100; policy accept;\n    \
                     ct status dnat ct original ip daddr {{ {} }} masquerade\n  }}\n",
                    listens.join(", ")
                ));
            }
        }
        s.push_str("}\n");
        s
    }
}

/// The fence rules of `plan`: for the `output` chain, the `forward` chain
/// and the `input` chain (the last only where the control plane's addresses
/// are known: on an agent host, whose own nodes' fences must also stop
/// connections from other machines).
fn fences(plan: &EndpointPlan) -> (String, String, String) {
    let set = |v: Vec<String>| v.join(", ");
    let cp = &plan.control_plane;
    let addrs = set(cp.addrs.iter().map(ToString::to_string).collect());
    let uids = set(cp.uids.iter().map(ToString::to_string).collect());
    let (mut out, mut fwd, mut input) = (String::new(), String::new(), String::new());
    for f in &plan.fenced {
        let (ip, port) = (f.node.ip(), f.node.port());
        let to = format!("meta l4proto tcp ip daddr {ip} tcp dport {port}");
        let from = format!("meta l4proto tcp ip saddr {ip} tcp sport {port}");
        let (by_uid, from_cp, to_cp) = match (f.remote, uids.is_empty(), addrs.is_empty()) {
            (false, _, _) => (String::new(), String::new(), String::new()),
            (true, u, a) => (
                if u {
                    String::new()
                } else {
                    format!(" meta skuid != {{ {uids} }}")
                },
                if a {
                    String::new()
                } else {
                    format!(" ip saddr != {{ {addrs} }}")
                },
                if a {
                    String::new()
                } else {
                    format!(" ip daddr != {{ {addrs} }}")
                },
            ),
        };
        out.push_str(&format!("    {to}{by_uid} reject with tcp reset\n"));
        out.push_str(&format!("    {from}{to_cp} drop\n"));
        fwd.push_str(&format!("    {to}{from_cp} reject with tcp reset\n"));
        fwd.push_str(&format!("    {from}{to_cp} drop\n"));
        if f.remote && !addrs.is_empty() {
            input.push_str(&format!("    ct state new {to}{from_cp} reject with tcp reset\n"));
        }
    }
    (out, fwd, input)
}

/// Runs an `nft -f` script.
async fn run_script(script: &str) -> Result<(), EndpointError> {
    let mut child = tokio::process::Command::new("nft")
        .arg("-f")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| EndpointError::Nft(format!("cannot run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| EndpointError::Nft(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| EndpointError::Nft(e.to_string()))?;
    if !out.status.success() {
        return Err(EndpointError::Nft(format!(
            "{}\nscript:\n{script}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// Destroys this host's TCP sockets connected to `peer` (`ss -K`, the
/// kernel's `SOCK_DESTROY`): their owners see the connection fail at once.
/// Best effort: a failure is logged.
pub async fn close_connections_to(peer: SocketAddrV4) {
    let port = peer.port().to_string();
    let ip = peer.ip().to_string();
    let out = tokio::process::Command::new("ss")
        .args(["-K", "-t", "-n", "dst", &ip, "dport", "=", &port])
        .stdout(std::process::Stdio::null())
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => tracing::warn!(%peer, stderr = %String::from_utf8_lossy(&o.stderr), "cannot close connections"),
        Err(e) => tracing::warn!(%peer, error = %e, "cannot run ss to close connections"),
    }
}

#[async_trait]
impl DataPath for NftDataPath {
    fn kind(&self) -> &'static str {
        "kernel"
    }

    async fn apply(&self, plan: &EndpointPlan) -> Result<(), EndpointError> {
        let mut tally = self.lock.lock().await;
        // The new table starts with empty sets: keep what the old ones counted.
        let live = self.read_refused().await?;
        tally.refused.fold(live);
        let live = self.read_accepted().await?;
        tally.accepted.fold(live);
        let with_timeout = self.ct_timeout.load(std::sync::atomic::Ordering::Relaxed);
        let mut result = run_script(&self.render_with(plan, with_timeout)).await;
        if with_timeout && result.is_err() {
            // An older kernel or nft without conntrack timeout objects.
            let without = run_script(&self.render_with(plan, false)).await;
            if without.is_ok() {
                let why = result.err().map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!(
                    "the kernel refused a conntrack timeout object: endpoint connections keep the host's TIME_WAIT timeout ({})",
                    why.lines().next().unwrap_or_default()
                );
                self.ct_timeout.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            result = without;
        }
        result?;
        tally.refused.seen.clear();
        tally.accepted.seen.clear();
        // Clients of a newly fenced node would wait on it (a hung one answers
        // nothing, so nothing of theirs meets the reset). Its other peers are
        // the cluster's replicas, whose IO threads the failover kills itself
        // (destroying their sockets would send them reconnecting, and a
        // reconnecting IO thread takes seconds to stop).
        for f in plan
            .fenced
            .iter()
            .filter(|f| !tally.fenced.iter().any(|g| g.node == f.node))
        {
            if let Some(w) = f.writer {
                close_connections_to(w).await;
            }
        }
        tally.fenced = plan.fenced.clone();
        Ok(())
    }

    async fn accepted(&self) -> Result<Vec<(SocketAddrV4, u64)>, EndpointError> {
        let mut tally = self.lock.lock().await;
        let live = self.read_accepted().await?;
        tally.accepted.fold(live);
        Ok(tally.accepted.total.iter().map(|(&a, &n)| (a, n)).collect())
    }

    async fn refusals(&self) -> Result<Vec<RefusalCount>, EndpointError> {
        let mut tally = self.lock.lock().await;
        let live = self.read_refused().await?;
        tally.refused.fold(live);
        Ok(tally
            .refused
            .total
            .iter()
            .map(|(&(target, source), &count)| RefusalCount { target, source, count })
            .collect())
    }
}

/// The elements of an `nft -j list set` document with their packet counts.
fn elements(json: &[u8]) -> Vec<(Vec<serde_json::Value>, u64)> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(json) else {
        return Vec::new();
    };
    let sets = doc["nftables"].as_array().cloned().unwrap_or_default();
    let elems = sets.iter().filter_map(|o| o["set"]["elem"].as_array()).flatten();
    elems
        .filter_map(|e| {
            let e = &e["elem"];
            let parts = e["val"]["concat"].as_array()?.clone();
            Some((parts, e["counter"]["packets"].as_u64()?))
        })
        .collect()
}

/// Elements of `nft -j list set …accepted`: `[target, port]` and a count.
fn parse_accepted(json: &[u8]) -> Vec<(SocketAddrV4, u64)> {
    elements(json)
        .into_iter()
        .filter_map(|(parts, count)| {
            let target: std::net::Ipv4Addr = parts.first()?.as_str()?.parse().ok()?;
            let port = u16::try_from(parts.get(1)?.as_u64()?).ok()?;
            Some((SocketAddrV4::new(target, port), count))
        })
        .collect()
}

/// Elements of `nft -j list set …refused`: `{"elem": {"val": {"concat":
/// [target, port, source]}, "counter": {"packets": n}}}`.
fn parse_refused(json: &[u8]) -> Vec<(RefusalKey, u64)> {
    elements(json)
        .into_iter()
        .filter_map(|(parts, count)| {
            let target: std::net::Ipv4Addr = parts.first()?.as_str()?.parse().ok()?;
            let port = u16::try_from(parts.get(1)?.as_u64()?).ok()?;
            let source: IpAddr = parts.get(2)?.as_str()?.parse().ok()?;
            Some(((SocketAddrV4::new(target, port), source), count))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer (single backend, loopback), a balanced reader with overlapping
    /// allowed networks, and a writer with no backend and no allowed source;
    /// one node guard.
    fn sample_plan() -> EndpointPlan {
        let routes = vec![
            Route {
                listen: "127.77.0.1:3306".parse().unwrap(),
                backends: vec!["127.0.0.1:41000".parse().unwrap()],
                exclusive: true,
                allowed: crate::loopback_only(),
            },
            Route {
                listen: "127.78.0.1:3306".parse().unwrap(),
                backends: vec!["127.0.0.1:41001".parse().unwrap(), "127.0.0.1:41002".parse().unwrap()],
                exclusive: false,
                allowed: vec!["127.0.0.2/32".parse().unwrap(), "127.0.0.0/30".parse().unwrap()],
            },
            Route {
                listen: "127.77.0.2:3306".parse().unwrap(),
                backends: vec![],
                exclusive: true,
                allowed: vec![],
            },
        ];
        EndpointPlan {
            routes,
            guards: vec![
                NodeGuard {
                    host: "127.0.0.1".parse().unwrap(),
                    ports: vec![41000, 41001],
                    uids: vec![0, 1_500_000_001],
                    peers: vec![],
                },
                // An agent host's node: other machines by source only.
                NodeGuard {
                    host: "198.51.100.11".parse().unwrap(),
                    ports: vec![21000],
                    uids: vec![],
                    peers: vec!["198.51.100.2/32".parse().unwrap(), "198.51.100.12/32".parse().unwrap()],
                },
            ],
            fenced: vec![
                Fence {
                    node: "127.0.0.1:41002".parse().unwrap(),
                    remote: false,
                    writer: Some("127.77.0.2:3306".parse().unwrap()),
                },
                Fence {
                    node: "198.51.100.11:21001".parse().unwrap(),
                    remote: true,
                    writer: None,
                },
            ],
            control_plane: crate::ControlPlane {
                uids: vec![0],
                addrs: vec!["198.51.100.2".parse().unwrap()],
            },
        }
    }

    #[test]
    fn renders_single_and_balanced_routes() {
        let p = NftDataPath::new("marina_t");
        let s = p.render(&sample_plan());
        assert!(s.starts_with("table ip marina_t\ndelete table ip marina_t\n"));
        let admit = "ct state new meta l4proto tcp ct original ip daddr";
        assert!(s.contains(&format!(
            "{admit} 127.77.0.1 ct original proto-dst 3306 ip saddr != {{ 127.0.0.0/8 }} reject with tcp reset"
        )));
        // Overlapping networks are merged (nft refuses overlapping set elements).
        assert!(s.contains(&format!(
            "{admit} 127.78.0.1 ct original proto-dst 3306 ip saddr != {{ 127.0.0.0/30 }} reject"
        )));
        assert!(s.contains(&format!(
            "{admit} 127.77.0.2 ct original proto-dst 3306 reject with tcp reset"
        )));
        let short = "ct timeout set \"endpoint\"";
        assert!(s.contains(&format!(
            "ip daddr 127.77.0.1 tcp dport 3306 {short} dnat to 127.0.0.1:41000\n"
        )));
        assert!(s.contains(&format!(
            "ip daddr 127.78.0.1 tcp dport 3306 {short} dnat to numgen inc mod 2 map {{ 0 : 127.0.0.1 . 41001, 1 : 127.0.0.1 . 41002 }}"
        )));
        assert!(s.contains("ct timeout endpoint {\n    protocol tcp; l3proto ip; policy = { time_wait: 10 }\n  }"));
        // Without conntrack timeout objects: the same rules without it.
        let plain = p.render_with(&sample_plan(), false);
        assert!(plain.contains("ip daddr 127.77.0.1 tcp dport 3306 dnat to 127.0.0.1:41000\n"));
        assert!(!plain.contains("ct timeout"));
        let guard = "ct direction original meta l4proto tcp ct original ip daddr 127.77.0.1 ct original proto-dst 3306";
        assert!(s.contains(&format!(
            "{guard} ip daddr 127.0.0.1 tcp dport 41000 accept\n    {guard} reject with tcp reset"
        )));
        assert!(
            !s.contains("ct direction original meta l4proto tcp ct original ip daddr 127.78.0.1"),
            "the reader is not exclusive"
        );
        // No backend: new connections are refused, established ones left alone.
        assert!(s.contains("ct state new meta l4proto tcp ct original ip daddr 127.77.0.2 ct original proto-dst 3306 reject with tcp reset"));
        assert!(!s.contains("ct direction original meta l4proto tcp ct original ip daddr 127.77.0.2"));
        assert!(!s.contains("127.77.0.2 tcp dport 3306 dnat"));
        // Refusals by security groups are recorded before the reset.
        assert!(s.contains(&format!(
            "{admit} 127.77.0.1 ct original proto-dst 3306 ip saddr != {{ 127.0.0.0/8 }} {RECORD}\n"
        )));
        // Node ports: other uids' new connections are recorded and dropped.
        let node = "ct state new meta l4proto tcp ct original ip daddr 127.0.0.1 ct original proto-dst { 41000, 41001 } meta skuid != { 0, 1500000001 }";
        assert!(s.contains(&format!("{node} {RECORD}\n    {node} drop\n")), "{s}");
        // A fenced node: first in the guard chain, both directions.
        let guard_chain = s.find("chain guard").unwrap();
        let fence = s
            .find("    meta l4proto tcp ip daddr 127.0.0.1 tcp dport 41002 reject with tcp reset\n    meta l4proto tcp ip saddr 127.0.0.1 tcp sport 41002 drop\n")
            .expect("fence rules");
        assert!(
            fence > guard_chain && s[guard_chain..fence].matches('\n').count() == 2,
            "{s}"
        );
        assert_eq!(
            p.render(&EndpointPlan::default()),
            "table ip marina_t\ndelete table ip marina_t\n"
        );
    }

    #[test]
    fn refusal_counts_fold_across_resets_and_expiry() {
        let key: RefusalKey = ("127.77.0.1:3306".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let mut t = Tally::default();
        t.fold(vec![(key, 2)]);
        t.fold(vec![(key, 5)]);
        assert_eq!(t.total[&key], 5);
        // An apply empties the set: counting restarts from zero.
        t.seen.clear();
        t.fold(vec![(key, 1)]);
        assert_eq!(t.total[&key], 6);
        // An element that expired and came back counts from its new value.
        t.fold(vec![(key, 0)]);
        t.fold(vec![(key, 3)]);
        assert_eq!(t.total[&key], 9);
    }

    #[test]
    fn parses_the_refused_set() {
        let json = br#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "ip", "name": "refused", "table": "t", "elem": [{"elem": {"val": {"concat": ["127.66.0.1", 3306, "127.0.0.3"]}, "timeout": 3600, "expires": 3599, "counter": {"packets": 3, "bytes": 180}}}]}}]}"#;
        let got = parse_refused(json);
        assert_eq!(
            got,
            vec![(("127.66.0.1:3306".parse().unwrap(), "127.0.0.3".parse().unwrap()), 3)]
        );
        assert!(parse_refused(b"not json").is_empty());
    }

    #[test]
    fn parses_the_accepted_set_and_counts_only_routes_with_backends() {
        let json = br#"{"nftables": [{"set": {"family": "ip", "name": "accepted", "table": "t", "elem": [{"elem": {"val": {"concat": ["127.66.0.1", 3306]}, "counter": {"packets": 7, "bytes": 420}}}]}}]}"#;
        assert_eq!(parse_accepted(json), vec![("127.66.0.1:3306".parse().unwrap(), 7)]);
        let s = NftDataPath::new("marina_t").render(&sample_plan());
        let admit = "ct state new meta l4proto tcp ct original ip daddr";
        assert!(s.contains(&format!(
            "{admit} 127.77.0.1 ct original proto-dst 3306 {RECORD_ACCEPTED}"
        )));
        assert!(!s.contains(&format!(
            "{admit} 127.77.0.2 ct original proto-dst 3306 {RECORD_ACCEPTED}"
        )));
    }

    #[test]
    fn rendered_script_is_accepted_by_nft() {
        use std::io::Write;
        for p in [
            NftDataPath::new("marina_render_check"),
            NftDataPath::new("marina_render_check").forwarding(),
        ] {
            let script = p.render(&sample_plan());
            // `-c`: parse and check against the kernel without applying.
            let mut child = std::process::Command::new("nft")
                .args(["-c", "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("nft is installed (scripts/install-deps.sh)");
            child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}\n{script}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn an_agent_hosts_node_ports_admit_only_its_peers_from_elsewhere() {
        let s = NftDataPath::new("t").forwarding().render(&sample_plan());
        let chain = &s[s.find("chain guard_host").expect("an input guard")..];
        let chain = &chain[..chain.find("  }").unwrap()];
        assert!(chain.contains("hook input"), "{chain}");
        let rule = "ct original ip daddr 198.51.100.11 ct original proto-dst { 21000 } ip saddr != { 198.51.100.2/32, 198.51.100.12/32 }";
        assert!(chain.contains(&format!("{rule} {RECORD}")), "{chain}");
        assert!(chain.contains(&format!("{rule} drop")), "{chain}");
        // The local guard (by socket owner) only where uids are given.
        assert!(!chain.contains("skuid"), "{chain}");
        let output = &s[s.find("chain guard {").unwrap()..];
        assert!(!output[..output.find("  }").unwrap()].contains("21000"), "{output}");
        // No peers and no fence of a remote node: no input chain.
        let mut plan = sample_plan();
        plan.guards.pop();
        plan.fenced.pop();
        assert!(!NftDataPath::new("t").render(&plan).contains("guard_host"));
    }

    #[test]
    fn a_forwarded_endpoint_that_leads_nowhere_resets_at_once() {
        // The sample's 127.77.0.2:3306 has no backends.
        let fwd = NftDataPath::new("t").forwarding().render(&sample_plan());
        let chain = |name: &str| {
            let c = &fwd[fwd.find(&format!("chain {name} {{")).unwrap()..];
            c[..c.find("  }").unwrap()].to_string()
        };
        assert!(
            chain("endpoints_in").contains("ip daddr 127.77.0.2 tcp dport 3306 redirect to :3306"),
            "{fwd}"
        );
        assert!(
            chain("guard_host").contains(
                "meta l4proto tcp ct original ip daddr 127.77.0.2 ct original proto-dst 3306 reject with tcp reset"
            ),
            "{fwd}"
        );
        // Not on the control plane's own (non-forwarding) table.
        let local = NftDataPath::new("t").render(&sample_plan());
        assert!(!local.contains("redirect"), "{local}");
    }

    #[test]
    fn a_fence_lets_the_control_plane_manage_a_node_on_another_host() {
        let s = NftDataPath::new("t").forwarding().render(&sample_plan());
        let chain = |name: &str| {
            let c = &s[s.find(&format!("chain {name} {{")).unwrap()..];
            c[..c.find("  }").unwrap()].to_string()
        };
        let (out, fwd, input) = (chain("guard"), chain("guard_in"), chain("guard_host"));
        // A local node's fence has no exception (the control plane uses its socket).
        assert!(
            out.contains("ip daddr 127.0.0.1 tcp dport 41002 reject with tcp reset"),
            "{out}"
        );
        assert!(out.contains("ip saddr 127.0.0.1 tcp sport 41002 drop"), "{out}");
        // A remote node's: the control plane passes, by uid here, by address elsewhere.
        let to = "meta l4proto tcp ip daddr 198.51.100.11 tcp dport 21001";
        let from = "meta l4proto tcp ip saddr 198.51.100.11 tcp sport 21001";
        assert!(
            out.contains(&format!("{to} meta skuid != {{ 0 }} reject with tcp reset")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{from} ip daddr != {{ 198.51.100.2 }} drop")),
            "{out}"
        );
        assert!(
            fwd.contains(&format!("{to} ip saddr != {{ 198.51.100.2 }} reject with tcp reset")),
            "{fwd}"
        );
        assert!(!fwd.contains("skuid"), "no socket owner on forwarded packets: {fwd}");
        assert!(
            input.contains(&format!(
                "ct state new {to} ip saddr != {{ 198.51.100.2 }} reject with tcp reset"
            )),
            "{input}"
        );
    }

    #[test]
    fn a_forwarding_data_path_serves_other_machines_without_uid_guards() {
        let local = NftDataPath::new("t").render(&sample_plan());
        let fwd = NftDataPath::new("t").forwarding().render(&sample_plan());
        assert!(
            !local.contains("prerouting") && !local.contains("masquerade"),
            "{local}"
        );
        for want in ["hook prerouting", "hook forward", "masquerade"] {
            assert!(fwd.contains(want), "{want}: {fwd}");
        }
        // Socket owners exist for local sockets only: the forward chain has
        // no uid guard.
        let forward = &fwd[fwd.find("chain guard_in").unwrap()..];
        let forward = &forward[..forward.find("  }").unwrap()];
        assert!(
            !forward.contains("skuid") && forward.contains("reject with tcp reset"),
            "{forward}"
        );
    }
}
