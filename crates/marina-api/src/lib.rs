//! The HTTP API: axum routes grouped per resource (`routes/`), the JSON views of
//! the contract (`views`), extractors whose rejections use the contract's error
//! body (`extract`), the one place errors become HTTP responses (`error`), and
//! the server with its OpenAPI document generated from the handlers, and the
//! transport (accept loop, TLS, slow-client timeouts).

pub mod audit;
pub mod dialect;
pub mod error;
pub mod extract;
pub mod observe;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod transport;
pub mod views;

pub use server::{router, serve};
