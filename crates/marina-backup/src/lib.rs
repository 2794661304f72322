//! Backup data: where backup objects are kept (`BlobStore`; a local directory
//! today, an S3-compatible store behind the same trait later) and the
//! pipelines that move them between MariaDB's tools and the store —
//! compressed with `zstd`, checksummed with SHA-256, and visible under their
//! key only once the tool that produced them succeeded.

pub mod blob;
pub mod compress;
pub mod governor;
pub mod identity;
pub mod manifest;
pub mod pipeline;
pub mod s3;

pub use blob::{BlobError, BlobStore, LocalBlobStore, Written};
pub use governor::{Pace, Redo, RedoMeter};
pub use identity::Identity;
pub use manifest::Manifest;
pub use pipeline::{PipelineError, Produced};
pub use s3::{S3BlobStore, S3Config};
