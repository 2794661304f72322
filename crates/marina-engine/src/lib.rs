//! The MariaDB engine: everything Marina knows about MariaDB itself — the option
//! file a node runs with, the accounts it creates at start-up, and the SQL it
//! sends to manage roles and replication. No process handling here (that is the
//! runtime's), and no state (that is the store's).

pub mod admin;
pub mod backup;
pub mod catalog;
pub mod cnf;
pub mod gtid;
pub mod probe;
pub mod users;

pub use admin::{AdminError, MysqlAdmin, NodeAddr, NodeAdmin, ReplicaSource};
