//! Pure placement decisions: endpoint addresses, node ports and the capacity
//! check. No I/O except where a caller passes a probe in, so every rule is unit
//! tested.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rand::Rng;

/// The first index `i ≥ 1` whose addresses in both pools are free; writer and
/// reader get the same offset (127.77.0.5 ↔ 127.78.0.5) so they are easy to pair.
pub fn endpoint_pair(writer: Ipv4Net, reader: Ipv4Net, used: &HashSet<String>) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let w0 = u32::from(writer.network());
    let r0 = u32::from(reader.network());
    let size = 1u64 << (32 - writer.prefix_len().max(reader.prefix_len()));
    (1..size.saturating_sub(1)).find_map(|i| {
        let w = Ipv4Addr::from(w0 + i as u32);
        let r = Ipv4Addr::from(r0 + i as u32);
        (!used.contains(&w.to_string()) && !used.contains(&r.to_string())).then_some((w, r))
    })
}

/// `n` distinct ports in `min..=max` that are neither in `used` nor refused by
/// `is_free` (a bind probe), starting from a random point of the range.
pub fn pick_ports(
    n: usize,
    min: u16,
    max: u16,
    used: &HashSet<u16>,
    is_free: impl Fn(u16) -> bool,
) -> Option<Vec<u16>> {
    let span = (max - min) as u32 + 1;
    let start = rand::rng().random_range(0..span);
    let mut out = Vec::with_capacity(n);
    for k in 0..span {
        let port = min + ((start + k) % span) as u16;
        if !used.contains(&port) && is_free(port) {
            out.push(port);
            if out.len() == n {
                return Some(out);
            }
        }
    }
    None
}

/// Refuses a request whose memory does not fit: the sum of node memory may not
/// exceed the host's memory times `overcommit`.
pub fn check_memory(host_gib: f64, overcommit: f64, used_gib: f64, requested_gib: f64) -> Result<(), String> {
    let limit = host_gib * overcommit;
    if used_gib + requested_gib > limit {
        return Err(format!(
            "not enough memory: the request needs {requested_gib:.1} GiB, {:.1} GiB of {limit:.1} GiB \
             (host memory {host_gib:.1} GiB × overcommit {overcommit}) is free",
            (limit - used_gib).max(0.0)
        ));
    }
    Ok(())
}

/// A host as placement sees it.
#[derive(Debug, Clone)]
pub struct HostSlot {
    pub id: String,
    pub zone: String,
    /// `active` (cordoned, draining and down hosts take no new node).
    pub schedulable: bool,
    /// Memory still free for nodes (its memory × overcommit − its nodes').
    pub free_bytes: i64,
    /// Nodes of the cluster being placed already on it.
    pub taken: u32,
}

/// Where `n` new nodes of `need_bytes` each go: one host id per node.
/// Nodes spread over zones first, then hosts (the zone, then the host,
/// holding fewest of the cluster's nodes; then the most free memory; then
/// the id, so the choice is stable). `spread`: no two of the cluster's nodes
/// on one host, or an error that says why; otherwise hosts are shared when
/// they must be.
pub fn spread(n: usize, need_bytes: u64, hosts: &[HostSlot], strict: bool) -> Result<Vec<String>, String> {
    let mut hosts: Vec<HostSlot> = hosts.iter().filter(|h| h.schedulable).cloned().collect();
    let mut zone_count: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for h in &hosts {
        *zone_count.entry(h.zone.clone()).or_default() += h.taken;
    }
    let mut out = Vec::with_capacity(n);
    for placed in 0..n {
        let best = hosts
            .iter_mut()
            .filter(|h| h.free_bytes >= need_bytes as i64 && !(strict && h.taken > 0))
            .min_by(|a, b| {
                let za = zone_count.get(&a.zone).copied().unwrap_or(0);
                let zb = zone_count.get(&b.zone).copied().unwrap_or(0);
                (za, a.taken, std::cmp::Reverse(a.free_bytes), &a.id).cmp(&(
                    zb,
                    b.taken,
                    std::cmp::Reverse(b.free_bytes),
                    &b.id,
                ))
            });
        let Some(h) = best else {
            return Err(if strict {
                format!(
                    "cannot place {n} nodes on {n} different hosts: {placed} placed, no other active host has {}                      MiB free (send \"placement\": \"best_effort\" to let nodes share a host)",
                    need_bytes >> 20
                )
            } else {
                format!("no active host has {} MiB free for a node", need_bytes >> 20)
            });
        };
        h.taken += 1;
        h.free_bytes -= need_bytes as i64;
        *zone_count.entry(h.zone.clone()).or_default() += 1;
        out.push(h.id.clone());
    }
    Ok(out)
}

/// Total memory of this host in GiB, from `/proc/meminfo`.
pub fn host_memory_gib() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    parse_meminfo_total(&text).unwrap_or(0.0)
}

fn parse_meminfo_total(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: &str, zone: &str, free_gib: i64, taken: u32) -> HostSlot {
        HostSlot {
            id: id.into(),
            zone: zone.into(),
            schedulable: true,
            free_bytes: free_gib << 30,
            taken,
        }
    }

    #[test]
    fn spread_decisions() {
        let gib = 1u64 << 30;
        let three_zones = vec![
            slot("a1", "a", 8, 0),
            slot("a2", "a", 16, 0),
            slot("b1", "b", 8, 0),
            slot("c1", "c", 8, 0),
        ];
        /// (name, nodes, hosts, spread, the hosts chosen or the error's start)
        type Case = (
            &'static str,
            usize,
            Vec<HostSlot>,
            bool,
            Result<Vec<&'static str>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "one node per zone, the roomier host of a zone first",
                3,
                three_zones.clone(),
                true,
                Ok(vec!["a2", "b1", "c1"]),
            ),
            (
                "a fourth node goes to the zone's other host",
                4,
                three_zones.clone(),
                true,
                Ok(vec!["a2", "b1", "c1", "a1"]),
            ),
            (
                "strict: more nodes than hosts is an error",
                5,
                three_zones.clone(),
                true,
                Err("cannot place 5 nodes on 5 different hosts: 4 placed"),
            ),
            (
                "best effort: hosts are shared, zones kept even",
                5,
                three_zones.clone(),
                false,
                Ok(vec!["a2", "b1", "c1", "a1", "b1"]),
            ),
            (
                "one local host, best effort: every node on it",
                3,
                vec![slot("local", "local", 16, 0)],
                false,
                Ok(vec!["local", "local", "local"]),
            ),
            (
                "cordoned hosts take nothing",
                1,
                vec![HostSlot {
                    schedulable: false,
                    ..slot("x", "a", 16, 0)
                }],
                false,
                Err("no active host has 1024 MiB free"),
            ),
            (
                "a host without room is skipped",
                2,
                vec![slot("small", "a", 0, 0), slot("b1", "b", 4, 0), slot("c1", "c", 4, 0)],
                true,
                Ok(vec!["b1", "c1"]),
            ),
            (
                "an added node avoids the cluster's zones and hosts",
                1,
                vec![
                    slot("a1", "a", 8, 1),
                    slot("b1", "b", 8, 1),
                    slot("b2", "b", 8, 0),
                    slot("c1", "c", 1, 0),
                ],
                true,
                Ok(vec!["c1"]),
            ),
        ];
        for (name, n, hosts, strict, want) in cases {
            let got = spread(n, gib, &hosts, strict);
            match (&got, want) {
                (Ok(ids), Ok(w)) => assert_eq!(ids, &w, "{name}"),
                (Err(e), Err(w)) => assert!(e.starts_with(w), "{name}: {e}"),
                _ => panic!("{name}: got {got:?}"),
            }
        }
    }

    #[test]
    fn endpoint_pairs_skip_used_addresses() {
        let w: Ipv4Net = "127.77.0.0/24".parse().unwrap();
        let r: Ipv4Net = "127.78.0.0/24".parse().unwrap();
        let mut used = HashSet::new();
        assert_eq!(
            endpoint_pair(w, r, &used),
            Some(("127.77.0.1".parse().unwrap(), "127.78.0.1".parse().unwrap()))
        );
        used.insert("127.77.0.1".to_string());
        used.insert("127.78.0.2".to_string());
        assert_eq!(
            endpoint_pair(w, r, &used),
            Some(("127.77.0.3".parse().unwrap(), "127.78.0.3".parse().unwrap()))
        );
        let tiny: Ipv4Net = "127.77.0.0/30".parse().unwrap();
        let tiny_r: Ipv4Net = "127.78.0.0/30".parse().unwrap();
        let full: HashSet<String> = ["127.77.0.1", "127.77.0.2"].iter().map(|s| s.to_string()).collect();
        assert_eq!(endpoint_pair(tiny, tiny_r, &full), None);
    }

    #[test]
    fn ports_are_distinct_free_and_in_range() {
        let used: HashSet<u16> = [100, 101].into_iter().collect();
        let got = pick_ports(3, 100, 105, &used, |p| p != 103).unwrap();
        assert_eq!(got.len(), 3);
        let set: HashSet<u16> = got.iter().copied().collect();
        assert_eq!(set, [102, 104, 105].into_iter().collect());
        assert!(pick_ports(5, 100, 105, &used, |_| true).is_none());
    }

    #[test]
    fn memory_check() {
        assert!(check_memory(24.0, 1.5, 30.0, 6.0).is_ok());
        let err = check_memory(24.0, 1.5, 30.0, 6.5).unwrap_err();
        assert!(err.contains("6.5 GiB"), "{err}");
        assert_eq!(parse_meminfo_total("MemTotal:       25165824 kB\n"), Some(24.0));
    }
}
