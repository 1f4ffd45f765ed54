//! weft-service: the MSP use cases, each rule decided once. The command line (`src/cmd/`) and
//! the HTTP API call these functions and only map their [`ServiceError`] to an exit code or a
//! status; neither re-implements a rule.
//!
//! - [`orgs`]: organizations — create, update, re-parent (no cycles), tags, remove, views.
//! - [`variables`]: org variables (the name rule, sealing secrets, `***` in every view).
//! - [`integrations`]: checking, adding and removing integration instances.
//! - [`directory`]: the synced contacts, configurations, locations and users; sync runs.
//! - [`mapping`]: which Autotask company each org is (suggest, apply, set, exclude, create).
//! - [`sync`]: the PSA directory sync, a planner per record kind; settings and the nightly run.
//! - [`crates`]: the crate library, install, upgrade, detach, uninstall.
//! - [`triggers`]: triggers with their effective state, switches, firing, events, webhook
//!   secrets.
//! - [`workflows`]: validating and deploying workflows; [`forms`]: deploying and describing
//!   form files.
//!
//! Errors are one [`ServiceError`] whose [`ErrorKind`] callers map (see
//! `docs/architecture.md`). Everything works on the engine's seams (`Store`, `SecretBox`) and
//! on `weft-triggers` and `weft-actions`: no HTTP, no terminal.

pub mod crates;
pub mod directory;
pub mod error;
pub mod forms;
pub mod integrations;
pub mod mapping;
pub mod orgs;
pub mod sync;
pub mod triggers;
pub mod variables;
pub mod workflow_tests;
pub mod workflows;

pub use error::{ErrorKind, ServiceError};
