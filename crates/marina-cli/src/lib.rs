//! The `marina` command-line client: a thin HTTP client of the REST API with
//! human tables (default) or `--output json`, and `--wait` progress for
//! operations. It reads `MARINA_URL` and `MARINA_TOKEN`, falling back to
//! `http://127.0.0.1:7300` and `<data-dir>/admin-token`.

pub mod backups;
pub mod catalog;
pub mod client;
pub mod cluster_ops;
pub mod commands;
pub mod hosts;
pub mod node_info;
pub mod nodes;
pub mod output;
pub mod ovh_apps;
pub mod security_groups;
pub mod tenants;
pub mod wait;

pub use backups::{BackupCmd, run_backup};
pub use catalog::{DbCmd, UserCmd, run_db, run_user};
pub use commands::{
    ClusterCmd, Common, NodeSizeCmd, OperationCmd, TokenCmd, run_cluster, run_node_size, run_operation, run_token,
};
pub use hosts::{HostCmd, run_host};
pub use nodes::{NodeCmd, run_node};
pub use ovh_apps::{OvhAppCmd, run_ovh_app};
pub use security_groups::{SecurityGroupCmd, run_security_group};
pub use tenants::{AuditCmd, BackgroundTaskCmd, TenantCmd, run_audit, run_background_task, run_tenant};
