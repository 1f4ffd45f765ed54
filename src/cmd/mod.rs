//! One module per subcommand.

/// A use case's answer, or (returned from the enclosing command) the exit code of its
/// refusal: usage 2, anything else 1.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok($crate::cmd::org::service_failure(&e)),
        }
    };
}

pub mod actions;
pub mod config;
pub mod crate_cmd;
pub mod deploy;
pub mod docs;
pub mod engine;
pub mod eval;
pub mod executions;
pub mod form;
pub mod healthcheck;
pub mod integration;
pub mod lsp;
pub mod mapping;
pub mod org;
pub mod progress;
pub mod run;
pub mod schema;
pub mod serve;
pub mod sim;
pub mod sync;
pub mod test;
pub mod trigger;
pub mod validate;
pub mod worker;

/// Renders miette diagnostics for the terminal (colour only on a TTY).
pub fn render_report(diag: &dyn miette::Diagnostic) -> String {
    use std::io::IsTerminal;
    let theme = if std::io::stderr().is_terminal() {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let mut out = String::new();
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    if handler.render_report(&mut out, diag).is_err() {
        out = format!("{diag}");
    }
    out
}
