//! weft-engine: the core every other crate builds on. It knows the workflow language and how
//! to run it, but no concrete action, trigger or HTTP server: it defines the seams
//! ([`Action`] and [`Registry`], [`store::Store`], the clock and secrets) and `weft-actions`,
//! `weft-triggers` and the `weft` binary plug implementations into them.
//!
//! Where to start:
//! - [`load`] turns YAML text into a validated [`Workflow`] plus [`Diagnostic`]s; the steps
//!   are [`yaml`] (spans), [`parse`] (model), then validation against the [`Registry`]
//!   ([`dag`] for `next:` edges, [`template`] for the Jinja expressions).
//! - [`executor::Engine`] starts and resumes executions, persisting every step in a
//!   [`store::Store`] (SQLite or PostgreSQL, chosen by URL in [`store::open`]).
//! - [`org`], [`integration`], [`secrets`] and [`bundle`] hold the MSP rules: the organization
//!   tree, per-org integrations and sealed secrets, and installable crates of workflows.
//!
//! # Usage
//! ```
//! let registry = weft_engine::Registry::new();
//! let loaded = weft_engine::load("name: hi\ntasks:\n  a:\n    action: core.noop\n", &registry);
//! // `core.noop` is not registered in an empty registry:
//! assert_eq!(loaded.diagnostics[0].code, "action.unknown");
//! ```

#![recursion_limit = "256"]

pub mod action;
pub mod bundle;
pub mod chart;
pub mod cron;
pub mod dag;
pub mod diagnostic;
pub mod executor;
pub mod form;
pub mod form_link;
pub mod integration;
pub mod model;
pub mod org;
pub mod parse;
pub mod registry;
pub mod retention;
pub mod schema;
pub mod secrets;
pub mod store;
pub mod suggest;
pub mod template;
pub mod testing;
mod validate;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use action::{Action, ActionContext, ActionError, ActionErrorKind, TypedAction};
pub use diagnostic::{Diagnostic, FileDiagnostic, Severity};
pub use model::Workflow;
pub use registry::{ActionSpec, Registry};
pub use validate::ROOT_NAMES;

/// The suffix of workflow test files (`ticket-triage.test.yaml`, run by `weft test`), which
/// sit beside workflows but are none.
pub const TEST_FILE_SUFFIX: &str = ".test.yaml";

/// Is the file named `name` (or a path ending in it) a workflow test file (`*.test.yaml` or
/// `*.test.yml`)?
pub fn is_test_file_name(name: &str) -> bool {
    name.ends_with(TEST_FILE_SUFFIX) || name.ends_with(".test.yml")
}

/// The result of loading a workflow file: the workflow if it has no errors, and every
/// diagnostic (errors and warnings) in file order.
#[derive(Debug)]
pub struct Loaded {
    /// The workflow, when there are no errors.
    pub workflow: Option<Workflow>,
    /// Everything found, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Are there errors (not just warnings)?
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses and validates a workflow's YAML text against the registered actions.
pub fn load(source: &str, registry: &Registry) -> Loaded {
    let root = match parse_yaml(source) {
        Ok(root) => root,
        Err(d) => {
            return Loaded {
                workflow: None,
                diagnostics: vec![*d],
            };
        }
    };
    let mut reader = parse::Reader::new(source);
    let parsed = reader.workflow(&root);
    let mut diagnostics = std::mem::take(&mut reader.diags);
    let workflow = parsed.map(|mut wf| {
        diagnostics.extend(
            validate::Checker {
                src: source,
                wf: &wf,
                sites: &reader.sites,
                publishes: &reader.publishes,
                registry,
                diags: Vec::new(),
            }
            .run(),
        );
        wf.start_tasks = dag::Dag::build(&wf.tasks)
            .start_tasks()
            .into_iter()
            .map(str::to_string)
            .collect();
        wf
    });
    diagnostics.sort_by_key(|d| (d.span.offset, d.severity));
    diagnostics.dedup();
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    Loaded {
        workflow: if has_errors { None } else { workflow },
        diagnostics,
    }
}

/// The YAML tree of a file, or the diagnostic of why it is not YAML weft reads.
fn parse_yaml(source: &str) -> Result<yaml::Node, Box<Diagnostic>> {
    yaml::parse(source).map_err(|e| {
        let code = match e.code {
            "yaml::too_large" => "yaml.too_large",
            "yaml::too_deep" => "yaml.too_deep",
            "yaml::multiple_documents" => "yaml.multiple_documents",
            "yaml::tag" => "yaml.tag",
            _ => "yaml.syntax",
        };
        Box::new(Diagnostic::error(code, e.span, e.message).with_help_opt(e.help))
    })
}

/// The result of loading a form file: the form if it has no errors, and every diagnostic.
#[derive(Debug)]
pub struct LoadedForm {
    /// The form, when there are no errors.
    pub form: Option<form::Form>,
    /// Everything found, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads a form file (`form: NAME`, `fields: [...]`) with file:line:column diagnostics.
pub fn load_form(source: &str) -> LoadedForm {
    let root = match parse_yaml(source) {
        Ok(root) => root,
        Err(d) => {
            return LoadedForm {
                form: None,
                diagnostics: vec![*d],
            };
        }
    };
    let mut reader = parse::Reader::new(source);
    let form = reader.form(&root);
    let mut diagnostics = std::mem::take(&mut reader.diags);
    diagnostics.sort_by_key(|d| (d.span.offset, d.severity));
    diagnostics.dedup();
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    LoadedForm {
        form: if has_errors { None } else { form },
        diagnostics,
    }
}

/// Checks one file, a workflow or a form (a top-level `form:` key), and returns its
/// diagnostics with the file they belong to (`weft validate`).
///
/// # Errors
/// The file cannot be read.
pub fn check_file(path: &Path, registry: &Registry) -> Result<Vec<FileDiagnostic>, Error> {
    let source = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let diagnostics = if is_form_source(&source) {
        load_form(&source).diagnostics
    } else {
        load(&source, registry).diagnostics
    };
    let file: std::sync::Arc<str> = path.display().to_string().into();
    let source: std::sync::Arc<str> = source.into();
    Ok(diagnostics
        .into_iter()
        .map(|diagnostic| FileDiagnostic {
            diagnostic,
            file: file.clone(),
            source: source.clone(),
        })
        .collect())
}

/// Is this YAML text a form file (a top-level `form:` key) rather than a workflow?
pub fn is_form_source(source: &str) -> bool {
    yaml::parse(source).is_ok_and(|root| is_form_root(&root))
}

/// Is this parsed document a form file ([`is_form_source`] for a caller that has parsed it)?
pub fn is_form_root(root: &yaml::Node) -> bool {
    root.get("form").is_some() && root.get("tasks").is_none()
}

/// One kind of engine failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file could not be read.
    Io,
    /// A workflow has errors.
    Invalid,
}

/// An engine error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A workflow file has errors.
    #[error("{path} has {} error(s)", diagnostics.iter().filter(|d| d.diagnostic.is_error()).count())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Its diagnostics.
        diagnostics: Vec<FileDiagnostic>,
    },
}

impl Error {
    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Io,
            Error::Invalid { .. } => ErrorKind::Invalid,
        }
    }
}

/// Reads and loads a workflow file; diagnostics come back attached to the file.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read.
pub fn load_file(path: &Path, registry: &Registry) -> Result<(Loaded, Vec<FileDiagnostic>), Error> {
    let source = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let loaded = load(&source, registry);
    let file: std::sync::Arc<str> = path.display().to_string().into();
    let source: std::sync::Arc<str> = source.into();
    let diags = loaded
        .diagnostics
        .iter()
        .map(|d| FileDiagnostic {
            diagnostic: d.clone(),
            file: file.clone(),
            source: source.clone(),
        })
        .collect();
    Ok((loaded, diags))
}
