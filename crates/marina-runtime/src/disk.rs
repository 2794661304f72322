//! What a node's files take on its host: the monitor's disk quotas read it
//! through `NodeRuntime::disk_usage`, never by walking a node's directory
//! itself (on another host there is none to walk).

use std::path::Path;

/// Bytes allocated to everything under `dir` (links are counted as links,
/// never followed). Missing entries (a file removed during the walk) count 0.
pub fn allocated_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            total += allocated_bytes(&entry.path());
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn measuring_counts_allocated_bytes_and_never_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 3 * MIB as usize]).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), vec![1u8; 8 * MIB as usize]).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let used = allocated_bytes(dir.path());
        assert!((3 * MIB..4 * MIB).contains(&used), "{used}");
        assert_eq!(allocated_bytes(&dir.path().join("missing")), 0);
    }
}
