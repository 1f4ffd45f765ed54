//! The end-to-end tests of the `weft` binary, in one test binary so that the workspace links
//! one executable for them instead of one per file. Each module was a file of its own under
//! `tests/`; they share one harness, [`support`] (`tests/support/`), compiled once.
//!
//! Run one module with `cargo test --test e2e MODULE::` (e.g. `cargo test --test e2e
//! tenant_walls::`). Kept apart, as binaries of their own: `tests/pg_restart.rs` (it restarts
//! the shared PostgreSQL server) and `tests/console_e2e.rs` (headless Chromium).
//!
//! Every test here uses its own temp dir, database (or PostgreSQL schema) and ports chosen by
//! the OS, and sets no process-wide state (no `std::env::set_var`, no global statics): the
//! tests of all modules run side by side in one process.

#[path = "../support/mod.rs"]
mod support;

mod autotask;
mod autotask_events;
mod binary_tools;
mod cluster_pg;
mod config;
mod crates_cli;
mod crates_forms;
mod crates_library;
mod crates_library_ai;
mod crates_triggers;
mod forms_page;
mod http;
mod keys_files;
mod lsp;
mod main_job;
mod mapping;
mod memory;
mod ops;
mod org_integrations_serve;
mod orgs_cli;
mod packaging;
mod parity;
mod parity_crates;
mod parity_forms;
mod parity_mapping;
mod parity_sync;
mod parity_triggers;
mod progress;
mod redaction;
mod run;
mod serve;
mod sync;
mod tenant_walls;
mod test_cmd;
mod trigger_cli;
mod validate_cli;
mod worker;
