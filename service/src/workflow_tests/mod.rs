//! `weft test`: workflow unit tests with mocked actions, run on a virtual clock.
//!
//! A test file (`NAME.test.yaml`, beside the workflow) holds cases: inputs, an org, an event,
//! mocks standing in for the actions, and expectations. Each case runs the real executor on a
//! scratch SQLite store, with every action behind a double ([`mocks`]): a mocked call answers
//! from the mock, a local action (`core.*` but `core.http`…, see `ActionSpec::local`) runs as
//! it is, an allowed one (`allow:`) really runs, and anything else fails the case, so nothing
//! reaches a real service by default. Time is Tokio's paused clock: delays, retry back-off and
//! timeouts pass at once, in order.

pub mod expect;
pub mod file;
mod held_store;
pub mod mocks;
pub mod report;
pub mod run;
pub mod update;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use file::{SUFFIX, TestFile, is_test_file};
pub use run::{CaseOutcome, FileError, FileOutcome, Options, run_files};

/// The workflow and form files of a folder (not its subfolders), which a test file beside
/// them may run: every `*.yaml`/`*.yml` but test files and crate manifests.
pub fn folder_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_workflow_like(p))
        .collect();
    out.sort();
    out
}

/// The file of the workflow the test file `test` tests, found as `weft test` finds it:
/// `workflow` (its `workflow:`) as a file relative to the test file, or the workflow so
/// named — by default the test file's name without `.test.yaml` — among the files of the
/// test file's folder.
pub fn workflow_file(test: &Path, workflow: Option<&str>) -> Option<PathBuf> {
    let dir = test.parent().filter(|d| !d.as_os_str().is_empty())?;
    let name = match workflow {
        Some(w) if file::is_workflow_path(w) => return Some(dir.join(w)).filter(|p| p.is_file()),
        Some(w) => w.to_string(),
        None => file::default_workflow(test),
    };
    folder_files(dir).into_iter().find(|p| {
        std::fs::read_to_string(p).is_ok_and(|text| {
            weft_engine::yaml::parse(&text)
                .is_ok_and(|root| root.get("name").and_then(|n| n.as_str()) == Some(&name))
        })
    })
}

/// A YAML file that is neither a test file nor a crate manifest.
pub fn is_workflow_like(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    ) && !is_test_file(path)
        && path.file_name().and_then(|n| n.to_str()) != Some("crate.yaml")
}

/// The test files under `paths` (a file is taken as it is; folders are searched, skipping
/// hidden ones, `target` and `node_modules`), sorted.
pub fn discover(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = BTreeSet::new();
    for path in paths {
        if path.is_file() {
            out.insert(path.clone());
            continue;
        }
        let mut stack = vec![path.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let p = entry?.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if p.is_dir() {
                    if !name.starts_with('.') && name != "target" && name != "node_modules" {
                        stack.push(p);
                    }
                } else if is_test_file(&p) {
                    // `weft test` in a folder names its files as `ticket-triage.test.yaml`,
                    // not `./ticket-triage.test.yaml`.
                    out.insert(p.strip_prefix(".").map(Path::to_path_buf).unwrap_or(p));
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// The problems of a test file's text (what `weft validate` and the editor show for it).
pub fn diagnostics(path: &Path, source: &str) -> Vec<weft_engine::Diagnostic> {
    file::parse(path, source).err().unwrap_or_default()
}

/// [`diagnostics`] of the file at `path`, attached to it for display.
///
/// # Errors
/// The file cannot be read.
pub fn check_file(path: &Path) -> std::io::Result<Vec<weft_engine::FileDiagnostic>> {
    let source = std::fs::read_to_string(path)?;
    let shared: std::sync::Arc<str> = source.as_str().into();
    let name: std::sync::Arc<str> = path.display().to_string().into();
    Ok(diagnostics(path, &source)
        .into_iter()
        .map(|d| weft_engine::FileDiagnostic {
            diagnostic: d,
            file: name.clone(),
            source: shared.clone(),
        })
        .collect())
}

/// Which tasks and routes of one workflow the cases exercised.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Coverage {
    /// The workflow.
    pub workflow: String,
    /// Tasks in the workflow.
    pub tasks: usize,
    /// Tasks that ran in some case.
    pub tasks_run: usize,
    /// Routes in the workflow.
    pub routes: usize,
    /// Routes followed in some case.
    pub routes_taken: usize,
    /// Tasks that never ran.
    pub tasks_never: Vec<String>,
    /// Routes never followed (`task → on failure → notify`).
    pub routes_never: Vec<String>,
}

/// Coverage of every workflow the files' cases ran: one entry per workflow file (two files
/// may name their workflows alike; then each is shown with its file).
pub fn coverage(files: &[FileOutcome]) -> Vec<Coverage> {
    type Key = (String, String);
    let mut workflows: BTreeMap<Key, std::sync::Arc<weft_engine::Workflow>> = BTreeMap::new();
    let mut ran: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
    let mut taken: BTreeMap<Key, BTreeSet<(String, usize)>> = BTreeMap::new();
    for f in files {
        for (wf, path) in &f.workflows {
            workflows
                .entry((wf.name.clone(), path.clone()))
                .or_insert_with(|| wf.clone());
        }
        // Within one file's store, a name is one workflow.
        let key_of = |name: &str| {
            f.workflows
                .iter()
                .find(|(wf, _)| wf.name == name)
                .map(|(wf, path)| (wf.name.clone(), path.clone()))
        };
        for case in &f.cases {
            let Some(seen) = &case.observed else { continue };
            for (wf, task, routes) in &seen.covered {
                let Some(key) = key_of(wf) else { continue };
                ran.entry(key.clone()).or_default().insert(task.clone());
                for r in routes {
                    taken
                        .entry(key.clone())
                        .or_default()
                        .insert((task.clone(), *r));
                }
            }
        }
    }
    let names: Vec<&String> = workflows.keys().map(|(n, _)| n).collect();
    let shared = |n: &String| names.iter().filter(|m| **m == n).count() > 1;
    workflows
        .iter()
        .map(|(key, wf)| {
            let ran = ran.get(key);
            let taken = taken.get(key);
            let mut c = Coverage {
                workflow: if shared(&key.0) {
                    format!("{} ({})", key.0, key.1)
                } else {
                    key.0.clone()
                },
                ..Coverage::default()
            };
            for (name, task) in &wf.tasks {
                c.tasks += 1;
                if ran.is_some_and(|r| r.contains(name)) {
                    c.tasks_run += 1;
                } else {
                    c.tasks_never.push(name.clone());
                }
                for i in 0..task.next.len() {
                    c.routes += 1;
                    if taken.is_some_and(|t| t.contains(&(name.clone(), i))) {
                        c.routes_taken += 1;
                    } else {
                        c.routes_never.push(expect::describe_route(wf, name, i));
                    }
                }
            }
            c
        })
        .collect()
}
