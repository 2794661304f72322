//! MariaDB GTID positions (`domain-server-seq`, comma separated) and the
//! comparisons failover needs: which replica is most advanced, whether a node has
//! errant transactions, and whether a node's history is contained in another's.

use std::collections::BTreeMap;

/// One position per replication domain: domain → (server_id, seq_no).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos(pub BTreeMap<u32, (u32, u64)>);

impl GtidPos {
    /// Parses `0-1-100,1-2-5` (empty string = empty position). Malformed parts
    /// are an error: a position Marina cannot read must not be trusted.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split('-');
            let (Some(d), Some(srv), Some(seq), None) = (it.next(), it.next(), it.next(), it.next()) else {
                return Err(format!("malformed GTID {part:?}"));
            };
            let d: u32 = d.parse().map_err(|_| format!("malformed GTID domain in {part:?}"))?;
            let srv: u32 = srv.parse().map_err(|_| format!("malformed GTID server in {part:?}"))?;
            let seq: u64 = seq.parse().map_err(|_| format!("malformed GTID seq in {part:?}"))?;
            map.insert(d, (srv, seq));
        }
        Ok(GtidPos(map))
    }

    /// The sequence number in `domain` (0 when absent).
    pub fn seq(&self, domain: u32) -> u64 {
        self.0.get(&domain).map(|(_, s)| *s).unwrap_or(0)
    }

    /// Total of sequence numbers: a single number to order positions that are
    /// comparable domain by domain.
    pub fn total(&self) -> u64 {
        self.0.values().map(|(_, s)| *s).sum()
    }

    /// Whether every domain of `self` is at or behind `other`.
    pub fn le(&self, other: &GtidPos) -> bool {
        self.0.keys().all(|d| self.seq(*d) <= other.seq(*d))
    }

    /// Transactions in the binlog that did not come through replication: in
    /// some domain the binlog is ahead of the replication position *with a
    /// transaction the node wrote itself* (`own_server_id`). A binlog ahead
    /// with a transaction of another server is a replicated one caught
    /// between its binlog write and its replication-position update (the two
    /// variables are not read atomically; under a write load a replica is
    /// often there) — taking it for errant excluded the most advanced
    /// replica from elections.
    pub fn has_errant(binlog_pos: &GtidPos, slave_pos: &GtidPos, own_server_id: u32) -> bool {
        binlog_pos
            .0
            .iter()
            .any(|(d, (server, seq))| *seq > slave_pos.seq(*d) && *server == own_server_id)
    }

    /// The union of two states: per domain, the further position.
    pub fn max(&self, other: &GtidPos) -> GtidPos {
        let mut out = self.0.clone();
        for (d, (srv, seq)) in &other.0 {
            if *seq > self.seq(*d) {
                out.insert(*d, (*srv, *seq));
            }
        }
        GtidPos(out)
    }

    /// The position without `domain`.
    pub fn without(&self, domain: u32) -> GtidPos {
        let mut out = self.0.clone();
        out.remove(&domain);
        GtidPos(out)
    }

    /// The first domain after every domain of `self`.
    pub fn next_domain(&self) -> u32 {
        self.0.keys().next_back().map_or(1, |d| d.saturating_add(1))
    }

    /// Formats back to MariaDB's syntax.
    pub fn to_mariadb(&self) -> String {
        self.0
            .iter()
            .map(|(d, (s, n))| format!("{d}-{s}-{n}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl std::fmt::Display for GtidPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_mariadb())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> GtidPos {
        GtidPos::parse(s).unwrap()
    }

    #[test]
    fn domains_are_set_aside() {
        let q = p("0-1-100,3-2-7");
        assert_eq!(q.next_domain(), 4);
        assert_eq!(q.without(3).to_mariadb(), "0-1-100");
        assert_eq!(GtidPos::default().next_domain(), 1);
    }

    #[test]
    fn union_keeps_the_furthest_per_domain() {
        assert_eq!(
            p("0-1-5,1-2-3").max(&p("0-2-7,2-1-1")).to_mariadb(),
            "0-2-7,1-2-3,2-1-1"
        );
        assert_eq!(p("0-1-9").max(&p("0-2-7")).to_mariadb(), "0-1-9");
    }

    #[test]
    fn parses_and_formats() {
        assert_eq!(p(""), GtidPos::default());
        assert_eq!(p("0-1-100, 1-2-5").to_mariadb(), "0-1-100,1-2-5");
        assert_eq!(p("0-1-100").seq(0), 100);
        assert_eq!(p("0-1-100").seq(7), 0);
        assert!(GtidPos::parse("0-1").is_err());
        assert!(GtidPos::parse("a-b-c").is_err());
        assert!(GtidPos::parse("0-1-2-3").is_err());
    }

    #[test]
    fn containment_and_errant() {
        assert!(p("0-1-5").le(&p("0-2-9")));
        assert!(!p("0-1-10").le(&p("0-2-9")));
        assert!(p("").le(&p("0-1-1")));
        assert!(!p("1-3-1").le(&p("0-1-100")), "a domain the other never saw");
        // A replica whose binlog is ahead of what it replicated with its own
        // transaction wrote locally.
        assert!(GtidPos::has_errant(&p("0-1-5,1-3-1"), &p("0-1-5"), 3));
        assert!(GtidPos::has_errant(&p("0-3-6"), &p("0-1-5"), 3));
        assert!(!GtidPos::has_errant(&p("0-1-5"), &p("0-1-5"), 3));
        // Ahead with another server's transaction: a replicated one read
        // between its binlog write and its position update.
        assert!(!GtidPos::has_errant(&p("0-1-6"), &p("0-1-5"), 3));
        assert!(!GtidPos::has_errant(&p("0-1-5,1-2-9"), &p("0-1-5,1-2-8"), 3));
        assert_eq!(p("0-1-5,1-2-3").total(), 8);
    }
}
