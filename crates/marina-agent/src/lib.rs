//! The host agent's API (issue 23): what `marina agent` serves on each
//! host and what the control plane calls it with.
//!
//! - `wire`: the bodies (no path of the agent's host crosses);
//! - `tls`: mutual TLS, both sides' certificates signed by the control
//!   plane's CA, each side checking the other's name;
//! - `fence`: the epoch fence (a deposed control plane changes nothing);
//! - `endpoints`: the endpoint plan every host programs (kube-proxy's model);
//! - `fencing`: self-fencing of a primary whose host is cut off from the
//!   control plane and its peers;
//! - `server`: the routes, one per `NodeRuntime` call, over the host's own
//!   `LocalRuntime`;
//! - `data`: the data routes (copies, markers, installs: `marina_host::NodeData`
//!   on the agent's host);
//! - `probes`: the host's own probes of its nodes, streamed to the control
//!   plane;
//! - `peer`: copies streamed agent to agent under one-time tickets;
//! - `client`: `AgentClient`, the control plane's `NodeRuntime` for a node
//!   on an agent host; `client_data`: its `NodeData`.

pub mod client;
mod client_data;
pub mod data;
pub mod endpoints;
pub mod fence;
pub mod fencing;
pub mod peer;
pub mod probes;
pub mod server;
pub mod tls;
pub mod wire;

pub use client::AgentClient;
