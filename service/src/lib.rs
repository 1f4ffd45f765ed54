//! weft-service: the MSP use cases, each rule decided once. The command line (`src/cmd/`) and
//! the HTTP API call these functions and only map their [`ServiceError`] to an exit code or a
//! status; neither re-implements a rule.
//!
//! - [`orgs`]: creating organizations, the org tree (no cycles), tags.
//! - [`integrations`]: checking, adding and removing integration instances.
//!
//! Everything works on the engine's seams (`Store`, `SecretBox`): no HTTP, no terminal.

pub mod crates;
pub mod directory;
pub mod error;
pub mod integrations;
pub mod mapping;
pub mod orgs;
pub mod sync;
pub mod triggers;
pub mod variables;
pub mod workflows;

pub use error::{ErrorKind, ServiceError};
