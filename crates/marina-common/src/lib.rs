//! Types shared by every Marina crate: identifiers, the domain model (clusters,
//! nodes, operations, node sizes), the API view shapes of the contract, and the one
//! transport-agnostic error enum.

pub mod error;
pub mod files;
pub mod ids;
pub mod model;
pub mod redact;
pub mod size;
pub mod time_fmt;

pub use error::{Error, Result};
