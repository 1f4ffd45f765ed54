//! `weft validate PATH...`: workflow files and form files (a top-level `form:` key).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::IntoDiagnostic;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workflow, form and test files (`*.test.yaml`), or folders searched for workflow and
    /// form files (*.yaml / *.yml).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format: `text` (for people), `json` (a list of diagnostics) or `sarif` (SARIF
    /// 2.1.0, for code scanning and editors).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    Sarif,
}

/// Workflow files under `path` (itself if it is a file), sorted.
pub fn workflow_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if weft_service::workflow_tests::is_workflow_like(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let registry = weft_actions::registry();
    let mut files = Vec::new();
    for p in &args.paths {
        let found = workflow_files(p)
            .into_diagnostic()
            .map_err(|e| e.wrap_err(format!("cannot read {}", p.display())))?;
        if found.is_empty() {
            eprintln!(
                "warning: no workflow files (*.yaml, *.yml) in {}",
                p.display()
            );
        }
        files.extend(found);
    }
    let mut failed = false;
    let mut json_out = Vec::new();
    let mut all = Vec::new();
    for file in &files {
        // A test file named on the command line is checked as one (`weft test` runs it).
        let diags = if weft_service::workflow_tests::is_test_file(file) {
            weft_service::workflow_tests::check_file(file)
                .into_diagnostic()
                .map_err(|e| e.wrap_err(format!("cannot read {}", file.display())))?
        } else {
            weft_engine::check_file(file, &registry).into_diagnostic()?
        };
        let errors = diags
            .iter()
            .filter(|d| d.diagnostic.is_error() || args.deny_warnings)
            .count();
        let warnings = diags.len() - diags.iter().filter(|d| d.diagnostic.is_error()).count();
        failed |= errors > 0;
        match args.format {
            Format::Json => json_out.extend(diags.iter().map(|d| d.to_json())),
            Format::Sarif => all.extend(diags),
            Format::Text => {
                for d in &diags {
                    eprint!("{}", super::render_report(d));
                }
                if errors == 0 {
                    let note = if warnings > 0 {
                        format!(" ({warnings} warning(s))")
                    } else {
                        String::new()
                    };
                    println!("OK {}{note}", file.display());
                } else {
                    println!(
                        "FAILED {}: {errors} error(s), {warnings} warning(s)",
                        file.display()
                    );
                }
            }
        }
    }
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json_out).expect("diagnostics serialize")
        ),
        Format::Sarif => println!(
            "{}",
            serde_json::to_string_pretty(&weft_engine::diagnostic::sarif(&all, crate::VERSION))
                .expect("diagnostics serialize")
        ),
        Format::Text => {}
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
