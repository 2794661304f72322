//! Choosing the replica to promote — a pure function, unit tested.
//!
//! Rules: only reachable replicas that are not `failed` or in `maintenance` and
//! have no errant transactions (binlog ahead of what they replicated with a
//! transaction of their own server id; see `GtidPos::has_errant`) are
//! eligible; among them the one that has *received* the most (its IO position —
//! with semi-sync AFTER_SYNC, every acknowledged write was received by at least
//! one replica) wins; ties go to the lowest ordinal. A requested target must be
//! eligible and as advanced as the best one, or the election fails (promoting it
//! would lose writes).

use marina_engine::gtid::GtidPos;

/// What election needs to know about a replica.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node_id: String,
    pub ordinal: u32,
    /// Its `@@server_id` (what its own transactions carry).
    pub server_id: u32,
    /// Reachable now, not failed, not in maintenance.
    pub eligible: bool,
    pub gtid_binlog_pos: String,
    pub gtid_slave_pos: String,
    /// What it has received (`Gtid_IO_Pos`), or its slave position.
    pub received_pos: String,
}

/// Elects a candidate, or says why none can be.
pub fn elect(candidates: &[Candidate], target: Option<&str>) -> Result<String, String> {
    let mut reasons = Vec::new();
    let mut ok: Vec<(&Candidate, GtidPos)> = Vec::new();
    for c in candidates {
        if !c.eligible {
            reasons.push(format!("{} is unreachable, failed or in maintenance", c.node_id));
            continue;
        }
        let parsed = (
            GtidPos::parse(&c.gtid_binlog_pos),
            GtidPos::parse(&c.gtid_slave_pos),
            GtidPos::parse(&c.received_pos),
        );
        let (Ok(binlog), Ok(slave), Ok(received)) = parsed else {
            reasons.push(format!("{} reports an unreadable GTID position", c.node_id));
            continue;
        };
        if GtidPos::has_errant(&binlog, &slave, c.server_id) {
            reasons.push(format!(
                "{} has errant transactions (binlog {binlog} ahead of replicated {slave})",
                c.node_id
            ));
            continue;
        }
        let best = if received.le(&slave) { slave } else { received };
        ok.push((c, best));
    }
    let Some(max_total) = ok.iter().map(|(_, p)| p.total()).max() else {
        return Err(format!("no eligible replica: {}", reasons.join("; ")));
    };
    let most: Vec<&(&Candidate, GtidPos)> = ok.iter().filter(|(_, p)| p.total() == max_total).collect();
    match target {
        Some(t) => match ok.iter().find(|(c, _)| c.node_id == t) {
            Some((_, p)) if p.total() == max_total => Ok(t.to_string()),
            Some((_, p)) => Err(format!(
                "target {t} is behind ({p}) the most advanced replica; promoting it would lose writes"
            )),
            None => Err(format!("target {t} is not eligible: {}", reasons.join("; "))),
        },
        None => Ok(most
            .iter()
            .min_by_key(|(c, _)| c.ordinal)
            .map(|(c, _)| c.node_id.clone())
            .unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, ordinal: u32, eligible: bool, binlog: &str, slave: &str, received: &str) -> Candidate {
        Candidate {
            node_id: id.into(),
            ordinal,
            server_id: ordinal + 1,
            eligible,
            gtid_binlog_pos: binlog.into(),
            gtid_slave_pos: slave.into(),
            received_pos: received.into(),
        }
    }

    #[test]
    fn most_advanced_received_position_wins() {
        let cands = [
            c("a", 1, true, "0-1-10", "0-1-10", "0-1-12"),
            c("b", 2, true, "0-1-11", "0-1-11", "0-1-11"),
        ];
        assert_eq!(elect(&cands, None).unwrap(), "a");
    }

    #[test]
    fn ties_go_to_the_lowest_ordinal_and_ineligible_are_skipped() {
        let cands = [
            c("b", 2, true, "0-1-5", "0-1-5", "0-1-5"),
            c("a", 1, true, "0-1-5", "0-1-5", "0-1-5"),
            c("z", 0, false, "0-1-9", "0-1-9", "0-1-9"),
        ];
        assert_eq!(elect(&cands, None).unwrap(), "a");
    }

    #[test]
    fn errant_transactions_exclude_a_replica() {
        let cands2 = [
            c("a", 1, true, "0-1-9,1-2-1", "0-1-9", "0-1-9"),
            c("b", 2, true, "0-1-8", "0-1-8", "0-1-8"),
        ];
        // Same domain with a local write shows as a binlog seq ahead of slave pos.
        let local = [
            c("a", 1, true, "0-2-10", "0-1-9", "0-1-9"),
            c("b", 2, true, "0-1-8", "0-1-8", "0-1-8"),
        ];
        assert_eq!(elect(&cands2, None).unwrap(), "b");
        assert_eq!(elect(&local, None).unwrap(), "b");
        let err = elect(&[c("a", 1, true, "0-2-10", "0-1-9", "0-1-9")], None).unwrap_err();
        assert!(err.contains("errant"), "{err}");
    }

    #[test]
    fn a_replica_caught_mid_commit_is_not_errant() {
        // Under a write load, the binlog is read one replicated transaction
        // ahead of the replication position: "b" is still the most advanced.
        let cands = [
            c("a", 1, true, "0-1-10", "0-1-10", "0-1-10"),
            c("b", 2, true, "0-1-12", "0-1-11", "0-1-12"),
        ];
        assert_eq!(elect(&cands, None).unwrap(), "b");
    }

    #[test]
    fn a_target_must_not_lose_writes() {
        let cands = [
            c("a", 1, true, "0-1-10", "0-1-10", "0-1-10"),
            c("b", 2, true, "0-1-8", "0-1-8", "0-1-8"),
        ];
        assert_eq!(elect(&cands, Some("a")).unwrap(), "a");
        assert!(elect(&cands, Some("b")).unwrap_err().contains("behind"));
        assert!(elect(&cands, Some("x")).unwrap_err().contains("not eligible"));
        assert!(elect(&[], None).unwrap_err().contains("no eligible replica"));
    }
}
