//! Route handlers, one module per resource. Handlers are thin: extract, call one
//! `Marina` method, build the view.

pub mod audit;
pub mod backups;
pub mod catalog;
pub mod cloud66;
pub mod clusters;
pub mod ha;
pub mod hosts;
pub mod medstack;
pub mod metrics;
pub mod node_sizes;
pub mod nodes;
pub mod operations;
pub mod ovh;
pub mod repman;
pub mod repman_actions;
pub mod repman_api;
pub mod security_groups;
pub mod service;
pub mod tokens;
pub mod trove;
pub mod ui;
