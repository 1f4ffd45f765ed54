//! `autotask.*`: the Datto/Kaseya Autotask PSA REST API.
//!
//! [`client::Client`] does the protocol (zone discovery, auth headers, retries, the
//! per-endpoint thread limit and hourly budget shared across processes ([`limits`], named by
//! [`endpoint`]), paging, picklists); the actions in [`actions`] are thin
//! wrappers, most of them generated from a table by small macros.

pub mod actions;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod filter;
pub mod limits;
pub mod webhooks;

pub use client::{Client, Config};
pub use error::{AutotaskError, ErrorKind};
pub use filter::{FieldOp, Filter, FilterInput, GroupOp, parse_filters};

pub(crate) use actions::register;
