//! Typed operation steps. A step is stored (and shown by the API) by its
//! name; the worker parses that name once into a `Step` and every operation
//! type dispatches on the enum — no string or prefix matching anywhere else.
//!
//! Names: a plain `StepKind` (`prepare_nodes`), a switchover embedded in
//! another operation (`switchover:<kind>`), or a per-node step of a rolling
//! operation (`resize:<node_id>`, `reboot:<node_id>`).

use std::fmt;

macro_rules! step_kinds {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// Every plain step of every operation type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum StepKind { $($variant),* }

        impl StepKind {
            /// The stored name.
            pub const fn as_str(self) -> &'static str {
                match self { $(StepKind::$variant => $name),* }
            }

            /// The kind a stored name names.
            pub fn parse(s: &str) -> Option<StepKind> {
                match s { $($name => Some(StepKind::$variant),)* _ => None }
            }
        }
    };
}

step_kinds! {
    // create_cluster, restore_cluster
    VerifyBackup = "verify_backup",
    PrepareNodes = "prepare_nodes",
    RestoreData = "restore_data",
    StartNodes = "start_nodes",
    ResetHistory = "reset_history",
    ConfigureReplication = "configure_replication",
    LoadDump = "load_dump",
    ReplayBinlogs = "replay_binlogs",
    CreateCatalog = "create_catalog",
    Activate = "activate",
    // delete_cluster
    RemoveEndpoints = "remove_endpoints",
    StopNodes = "stop_nodes",
    RemoveFiles = "remove_files",
    ReleaseResources = "release_resources",
    // failover, switchover
    Elect = "elect",
    FenceOldPrimary = "fence_old_primary",
    ApplyRelayLog = "apply_relay_log",
    Check = "check",
    BlockWrites = "block_writes",
    DemotePrimary = "demote_primary",
    SyncTarget = "sync_target",
    Promote = "promote",
    RepointReplicas = "repoint_replicas",
    MoveEndpoints = "move_endpoints",
    // backup
    TakeBackup = "take_backup",
    Finalize = "finalize",
    // node operations
    CopyData = "copy_data",
    StartNode = "start_node",
    StopNode = "stop_node",
    DeleteNode = "delete_node",
    Drain = "drain",
    Stop = "stop",
    Start = "start",
    Restart = "restart",
    Apply = "apply",
    Attach = "attach",
    Join = "join",
    Finish = "finish",
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step as the worker runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A step of the operation's own type.
    Own(StepKind),
    /// A step of a switchover the operation runs first (`switchover:<kind>`).
    Switchover(StepKind),
    /// A rolling resize of one node (`resize:<node_id>`).
    Resize(String),
    /// A rolling reboot of one node (`reboot:<node_id>`).
    Reboot(String),
}

const SWITCHOVER: &str = "switchover:";
const RESIZE: &str = "resize:";
const REBOOT: &str = "reboot:";

impl Step {
    /// The step a stored name names, if any.
    pub fn parse(name: &str) -> Option<Step> {
        if let Some(kind) = name.strip_prefix(SWITCHOVER) {
            return StepKind::parse(kind).map(Step::Switchover);
        }
        if let Some(node) = name.strip_prefix(RESIZE) {
            return Some(Step::Resize(node.to_string()));
        }
        if let Some(node) = name.strip_prefix(REBOOT) {
            return Some(Step::Reboot(node.to_string()));
        }
        StepKind::parse(name).map(Step::Own)
    }

    /// The stored name.
    pub fn name(&self) -> String {
        match self {
            Step::Own(k) => k.as_str().to_string(),
            Step::Switchover(k) => format!("{SWITCHOVER}{k}"),
            Step::Resize(node) => format!("{RESIZE}{node}"),
            Step::Reboot(node) => format!("{REBOOT}{node}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "prepare_nodes",
            "finish",
            "switchover:block_writes",
            "resize:nd_abc",
            "reboot:nd_x",
        ] {
            let step = Step::parse(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(step.name(), name);
        }
        assert_eq!(Step::parse("prepare_nodes"), Some(Step::Own(StepKind::PrepareNodes)));
        assert_eq!(
            Step::parse("switchover:promote"),
            Some(Step::Switchover(StepKind::Promote))
        );
        for bad in ["", "nope", "switchover:nope", "switchover:", "Finish"] {
            assert_eq!(Step::parse(bad), None, "{bad}");
        }
    }
}
