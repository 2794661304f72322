//! Node sizes (flavors): the default catalog from the contract and the MariaDB
//! memory settings a size implies.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A node size as the contract shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeSize {
    pub id: String,
    #[serde(default = "node_size_object")]
    #[schema(example = "node_size")]
    pub object: String,
    #[serde(default)]
    pub title: String,
    pub vcpu: u32,
    /// Memory in GiB.
    pub memory: f64,
    pub disk_gib: u32,
    /// An exact disk quota in MiB, replacing `disk_gib` for the quota (config
    /// only: small quotas for tests, odd sizes); never shown by the API.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub disk_mib: Option<u64>,
}

fn node_size_object() -> String {
    "node_size".into()
}

impl NodeSize {
    /// A size with its contract title.
    pub fn new(id: &str, vcpu: u32, memory_gib: f64, disk_gib: u32) -> Self {
        NodeSize {
            id: id.into(),
            object: node_size_object(),
            title: String::new(),
            vcpu,
            memory: memory_gib,
            disk_gib,
            disk_mib: None,
        }
        .with_default_title()
    }

    /// Fills `title` ("Small: 2 cores, 2 GiB") when the config left it empty.
    pub fn with_default_title(mut self) -> Self {
        if self.title.is_empty() {
            let mut name = self.id.clone();
            if let Some(first) = name.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            let cores = if self.vcpu == 1 { "core" } else { "cores" };
            self.title = format!("{name}: {} {cores}, {} GiB", self.vcpu, self.memory);
        }
        self
    }

    /// Memory in bytes.
    pub fn memory_bytes(&self) -> u64 {
        (self.memory * 1024.0 * 1024.0 * 1024.0) as u64
    }

    /// `innodb_buffer_pool_size`: half the node's memory (RDS uses 3/4 of a
    /// dedicated host; Marina's nodes share hosts, so it leaves more headroom).
    pub fn buffer_pool_bytes(&self) -> u64 {
        let half = self.memory_bytes() / 2;
        // MariaDB rounds to the chunk size; keep a 128 MiB floor.
        half.max(128 * 1024 * 1024)
    }

    /// The disk a node of this size may use (see `disk_mib`).
    pub fn disk_quota_bytes(&self) -> u64 {
        self.disk_mib.map_or(u64::from(self.disk_gib) << 30, |m| m << 20)
    }

    /// `max_connections`: 150 per GiB, between 100 and 4000.
    pub fn max_connections(&self) -> u32 {
        ((self.memory * 150.0) as u32).clamp(100, 4000)
    }
}

/// The contract's default catalog.
pub fn default_catalog() -> Vec<NodeSize> {
    vec![
        NodeSize::new("xsmall", 1, 1.0, 10),
        NodeSize::new("small", 2, 2.0, 20),
        NodeSize::new("medium", 2, 4.0, 40),
        NodeSize::new("large", 4, 8.0, 80),
        NodeSize::new("xlarge", 4, 16.0, 160),
        NodeSize::new("2xlarge", 8, 32.0, 320),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_matches_contract() {
        let small = default_catalog().into_iter().find(|s| s.id == "small").unwrap();
        assert_eq!(small.title, "Small: 2 cores, 2 GiB");
        assert_eq!(small.vcpu, 2);
        assert_eq!(small.memory, 2.0);
        assert_eq!(small.disk_gib, 20);
        let xs = NodeSize::new("xsmall", 1, 1.0, 10);
        assert_eq!(xs.title, "Xsmall: 1 core, 1 GiB");
    }

    #[test]
    fn memory_settings_scale() {
        let small = NodeSize::new("small", 2, 2.0, 20);
        assert_eq!(small.buffer_pool_bytes(), 1024 * 1024 * 1024);
        assert_eq!(small.max_connections(), 300);
        assert_eq!(NodeSize::new("t", 1, 0.25, 1).buffer_pool_bytes(), 128 * 1024 * 1024);
    }
}
