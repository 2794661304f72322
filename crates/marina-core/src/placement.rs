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
