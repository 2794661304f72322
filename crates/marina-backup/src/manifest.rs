//! The manifest stored next to every backup object: what it is and how to
//! check it, so a backup can be restored (and verified) from the store alone.

use serde::{Deserialize, Serialize};

/// `manifest.json` of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub backup_id: String,
    pub cluster_id: String,
    /// `physical` or `logical`.
    pub method: String,
    /// `mbstream+zstd` or `sql+zstd`.
    pub format: String,
    /// The data object's key.
    pub object: String,
    pub size_bytes: u64,
    /// `sha256:<hex>` of the data object.
    pub checksum: String,
    pub gtid_position: String,
    pub mariadb_version: String,
    pub source_node_id: String,
    pub started_at: String,
    pub finished_at: String,
}
