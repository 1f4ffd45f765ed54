//! `weft test [PATH...]`: runs workflow test files (`*.test.yaml`) with mocked actions on a
//! virtual clock and reports each case.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use miette::IntoDiagnostic;
use serde_json::Value;
use weft_engine::FileDiagnostic;
use weft_engine::integration::StaticIntegrations;
use weft_service::workflow_tests::{
    self as tests, FileError, FileOutcome, Options, report, update,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Test files, or folders searched for `*.test.yaml` (default: the current folder).
    paths: Vec<PathBuf>,
    /// Only the cases whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    case: Option<String>,
    /// Print one JSON document instead of a summary.
    #[arg(long)]
    json: bool,
    /// Also write a JUnit XML report here (for CI).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write each case's observed status and output into its `expect:` (snapshot style);
    /// review the change before committing it.
    #[arg(long)]
    update: bool,
    /// Report which tasks and routes of each workflow the cases exercised.
    #[arg(long)]
    coverage: bool,
    /// Integration instances for actions a case lets run for real (`allow:`): a YAML file
    /// as for `weft run --integrations`.
    #[arg(long, env = "WEFT_INTEGRATIONS", value_name = "FILE")]
    integrations: Option<PathBuf>,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    for p in &paths {
        if !p.exists() {
            eprintln!("error: {} does not exist", p.display());
            return Ok(ExitCode::from(2));
        }
    }
    let files = tests::discover(&paths).into_diagnostic()?;
    if files.is_empty() {
        eprintln!(
            "error: no test files (*{}) in {}",
            tests::SUFFIX,
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::from(2));
    }
    let integrations = match &args.integrations {
        Some(path) => Some(Arc::new(
            StaticIntegrations::from_file(path).map_err(|e| miette::miette!("{e}"))?,
        ) as Arc<dyn weft_engine::integration::Integrations>),
        None => None,
    };
    let opts = Options {
        registry: Arc::new(weft_actions::registry()),
        integrations,
        filter: args.case.clone(),
    };
    let started = std::time::Instant::now();
    let outcomes = tests::run_files(&files, &opts);
    let elapsed = started.elapsed();
    let coverage = args.coverage.then(|| tests::coverage(&outcomes));
    if args.update {
        for outcome in &outcomes {
            write_snapshot(outcome)?;
        }
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&outcomes))
            .into_diagnostic()
            .map_err(|e| e.wrap_err(format!("cannot write {}", path.display())))?;
    }
    if args.json {
        let doc = report::json(&outcomes, coverage.as_deref());
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serializes")
        );
    } else {
        print!("{}", summary(&outcomes, elapsed));
        if let Some(c) = &coverage {
            print!("{}", coverage_text(c));
        }
    }
    let t = report::totals(&outcomes);
    if let Some(text) = &args.case
        && t.passed + t.failed == 0
        && t.errors == 0
    {
        eprintln!("error: no case's name contains `{text}`");
        return Ok(ExitCode::from(2));
    }
    Ok(if t.errors > 0 {
        ExitCode::from(2)
    } else if t.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_snapshot(outcome: &FileOutcome) -> miette::Result<()> {
    if outcome.error.is_some() {
        return Ok(());
    }
    let source = std::fs::read_to_string(&outcome.path).into_diagnostic()?;
    let Ok(file) = tests::file::parse(&outcome.path, &source) else {
        return Ok(());
    };
    if let Some(text) = update::updated(&file, outcome) {
        std::fs::write(&outcome.path, text).into_diagnostic()?;
        eprintln!(
            "updated the expectations in {}: review the change",
            outcome.path.display()
        );
    }
    Ok(())
}

fn summary(outcomes: &[FileOutcome], elapsed: std::time::Duration) -> String {
    let mut out = String::new();
    for f in outcomes {
        if f.workflow.is_empty() {
            let _ = writeln!(out, "{}", f.path.display());
        } else {
            let _ = writeln!(out, "{} ({})", f.path.display(), f.workflow);
        }
        match &f.error {
            Some(FileError::Invalid(diags)) => {
                let source: Arc<str> = std::fs::read_to_string(&f.path).unwrap_or_default().into();
                for d in diags {
                    let fd = FileDiagnostic {
                        diagnostic: d.clone(),
                        file: f.path.display().to_string().into(),
                        source: source.clone(),
                    };
                    out.push_str(&super::render_report(&fd));
                }
                continue;
            }
            Some(FileError::Other(why)) => {
                let _ = writeln!(out, "  error: {why}");
                continue;
            }
            None => {}
        }
        for c in &f.cases {
            let ms = c.elapsed.as_secs_f64() * 1000.0;
            if c.passed() {
                let _ = writeln!(out, "  ✓ {} ({ms:.0} ms)", c.name);
                continue;
            }
            let _ = writeln!(out, "  ✗ {} ({ms:.0} ms)", c.name);
            for x in &c.failures {
                let _ = writeln!(out, "    {}:{}: {}", f.path.display(), x.line, x.what);
                match (&x.expected, &x.got) {
                    (Some(e), Some(g)) if is_structured(e) || is_structured(g) => {
                        out.push_str(&diff(e, g));
                    }
                    (e, g) => {
                        if let Some(e) = e {
                            let _ = writeln!(out, "        expected: {e}");
                        }
                        if let Some(g) = g {
                            let _ = writeln!(out, "        got:      {g}");
                        }
                    }
                }
            }
        }
    }
    let t = report::totals(outcomes);
    let mut line = format!("{} passed, {} failed", t.passed, t.failed);
    if t.errors > 0 {
        line.push_str(&format!(", {} file(s) could not run", t.errors));
    }
    let _ = writeln!(out, "\n{line} ({:.2} s)", elapsed.as_secs_f64());
    out
}

fn is_structured(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Array(_))
}

/// Expected against got, line by line: `-` what the test file says, `+` what came.
fn diff(expected: &Value, got: &Value) -> String {
    let e = serde_json::to_string_pretty(expected).unwrap_or_default();
    let g = serde_json::to_string_pretty(got).unwrap_or_default();
    let mut out = String::from("        --- expected\n        +++ got\n");
    for change in similar::TextDiff::from_lines(&e, &g).iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
            similar::ChangeTag::Equal => ' ',
        };
        let _ = write!(out, "        {sign} {}", change.value());
        if change.missing_newline() {
            out.push('\n');
        }
    }
    out
}

fn coverage_text(coverage: &[tests::Coverage]) -> String {
    let mut out = String::from("\ncoverage\n");
    for c in coverage {
        let _ = writeln!(
            out,
            "  {}: {}/{} tasks, {}/{} routes",
            c.workflow, c.tasks_run, c.tasks, c.routes_taken, c.routes
        );
        for t in &c.tasks_never {
            let _ = writeln!(out, "    never ran: {t}");
        }
        for r in &c.routes_never {
            let _ = writeln!(out, "    never: {r}");
        }
    }
    out
}
