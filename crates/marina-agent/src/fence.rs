//! The epoch fence: the agent remembers the largest control-plane epoch it
//! has seen (in a file, so a restarted agent still refuses a deposed
//! leader) and refuses a call that carries an older one.
//!
//! A newer epoch is written (and synced) before the call that carried it
//! acts: after a crash the agent never forgets an epoch it acted for.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why a call's epoch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stale {
    pub sent: u64,
    pub seen: u64,
}

/// The largest epoch seen, kept in `<dir>/epoch`.
#[derive(Debug)]
pub struct EpochFence {
    path: PathBuf,
    seen: Mutex<u64>,
}

impl EpochFence {
    /// Loads the fence kept in `dir` (0 when none was kept yet).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join("epoch");
        let seen = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().parse().unwrap_or(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(EpochFence {
            path,
            seen: Mutex::new(seen),
        })
    }

    /// The largest epoch seen.
    pub fn seen(&self) -> u64 {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a call with `sent`: refused when older than the largest
    /// seen; a newer one is kept first.
    pub fn admit(&self, sent: u64) -> Result<(), AdmitError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match decide(*seen, sent) {
            Decision::Refuse => Err(AdmitError::Stale(Stale { sent, seen: *seen })),
            Decision::Admit => Ok(()),
            Decision::Advance => {
                marina_common::files::replace_private(&self.path, sent.to_string().as_bytes())
                    .map_err(AdmitError::Io)?;
                *seen = sent;
                Ok(())
            }
        }
    }
}

/// A refused call.
#[derive(Debug)]
pub enum AdmitError {
    Stale(Stale),
    Io(std::io::Error),
}

/// What a call's epoch means against the largest seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Refuse,
    Admit,
    Advance,
}

fn decide(seen: u64, sent: u64) -> Decision {
    match sent.cmp(&seen) {
        std::cmp::Ordering::Less => Decision::Refuse,
        std::cmp::Ordering::Equal => Decision::Admit,
        std::cmp::Ordering::Greater => Decision::Advance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_epochs_are_refused_newer_ones_kept() {
        for (seen, sent, want) in [
            (0, 1, Decision::Advance),
            (1, 1, Decision::Admit),
            (5, 4, Decision::Refuse),
            (5, 0, Decision::Refuse),
            (5, 6, Decision::Advance),
            (u64::MAX, u64::MAX, Decision::Admit),
        ] {
            assert_eq!(decide(seen, sent), want, "seen {seen}, sent {sent}");
        }
    }

    #[test]
    fn a_restarted_agent_remembers_the_largest_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let fence = EpochFence::open(dir.path()).unwrap();
        assert_eq!(fence.seen(), 0);
        fence.admit(3).unwrap();
        fence.admit(3).unwrap();
        assert!(matches!(
            fence.admit(2),
            Err(AdmitError::Stale(Stale { sent: 2, seen: 3 }))
        ));
        let again = EpochFence::open(dir.path()).unwrap();
        assert_eq!(again.seen(), 3);
        assert!(matches!(again.admit(1), Err(AdmitError::Stale(_))));
    }
}
