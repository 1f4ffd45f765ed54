//! The `weft` command line: parses arguments and calls the library crates.

mod cmd;
mod config;
mod lsp;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// `weft --version`: the package version and the commit it was built from (build.rs), so a
/// bug report names the exact build.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("WEFT_GIT_COMMIT"),
    ")"
);

/// weft — workflow automation for managed service providers.
///
/// Workflows are YAML files: tasks call actions (Autotask, HTTP, notifications…), routes
/// connect them, Jinja templates wire data between them.
#[derive(Debug, Parser)]
#[command(name = "weft", version = VERSION, about, long_about = None, propagate_version = true)]
struct Cli {
    /// The configuration file of `weft serve` and `weft worker` (and the database of every
    /// command); default: `./weft.toml` when there is one. Flags and environment variables
    /// override it. `weft config show` prints what is in effect.
    #[arg(long, global = true, env = "WEFT_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workflow to its end and print what each task did (exit 0 succeeded, 1 failed,
    /// 2 usage or validation error).
    Run(cmd::run::Args),
    /// List, inspect, cancel, rerun, resume and purge executions.
    #[command(subcommand)]
    Executions(cmd::executions::Command),
    /// Check workflow and form files (or folders of them) and report every problem with its
    /// location.
    Validate(cmd::validate::Args),
    /// Run workflow test files (`NAME.test.yaml`): cases with inputs, an org, an event and
    /// mocked actions, on a virtual clock (exit 0 all passed, 1 a case failed, 2 a file could
    /// not run).
    Test(cmd::test::Args),
    /// Render a template against sample data and print the result as JSON.
    Eval(cmd::eval::Args),
    /// Print the JSON Schema of workflow files, or of form files (for editor autocompletion).
    Schema {
        /// Which files: `workflow` (default) or `form`.
        #[arg(value_enum, default_value_t)]
        kind: cmd::schema::Kind,
    },
    /// List and describe the actions workflows can call.
    #[command(subcommand)]
    Actions(cmd::actions::Command),
    /// Serve a local Autotask PSA simulator (seeded MSP tenant) until Ctrl-C.
    Sim(cmd::sim::Args),
    /// Validate workflow and form files (or folders) and store each as a new version; a
    /// running `weft serve` on the same database picks them up. Exit 1 if any file is invalid.
    Deploy(cmd::deploy::Args),
    /// Deployed forms (form files, `form: NAME`): list them, show one's fields.
    #[command(subcommand)]
    Form(cmd::form::Command),
    /// Serve the JSON API and webhook triggers; executions run on in-process workers.
    ///
    /// Environment: WEFT_API_TOKEN (the API token), WEFT_METRICS_TOKEN (guards /metrics),
    /// WEFT_SECRET_KEY (the key secrets are sealed with), WEFT_TRUSTED_PROXIES (reverse
    /// proxies whose X-Forwarded-For names a webhook's sender), WEFT_REDACT_HEADERS (extra
    /// credential header names never stored), WEFT_LOG and WEFT_LOG_FORMAT (text or json).
    /// Each setting is also a `weft.toml` key: `weft config show`. Webhook secrets are per
    /// org: `weft trigger secret`. See SECURITY.md for the threat model and safe deployment.
    Serve(cmd::serve::Args),
    /// Triggers of the deployed workflows: list, enable, disable, fire a cron trigger now,
    /// each org's webhook secret (show, rotate), recent events.
    #[command(subcommand)]
    Trigger(cmd::trigger::Command),
    /// Run only executor workers on a shared database (PostgreSQL for several hosts): they
    /// take executions queued by every `weft serve`, and take over those of dead processes.
    Worker(cmd::worker::Args),
    /// PSA directory sync (`weft sync autotask --preview|--apply`, settings, exclusions) and
    /// its run history (`weft sync runs`).
    #[command(subcommand)]
    Sync(cmd::sync::Command),
    /// Organizations (the MSP and its clients), their tags and inherited variables.
    #[command(subcommand)]
    Org(cmd::org::Command),
    /// Integration instances (Autotask, Teams, Slack, OpenAI, HTTP) of organizations.
    #[command(subcommand)]
    Integration(cmd::integration::Command),
    /// Map orgs to Autotask companies: suggest by name, apply, set by hand, exclude, create
    /// orgs for unmatched companies (exit 0 done, 1 failed, 2 usage error).
    Mapping(cmd::mapping::Args),
    /// Crates: packaged workflows installed per organization (list, show, install, upgrade,
    /// detach, uninstall, installed).
    #[command(subcommand)]
    Crate(cmd::crate_cmd::Command),
    /// The settings of `weft serve` and `weft worker` (`weft.toml`, environment, flags):
    /// `weft config show [--json]` prints each with where it came from.
    #[command(subcommand)]
    Config(cmd::config::Command),
    /// Ask a running `weft serve` whether it is healthy (`/healthz`): exit 0 if it is, 1 if
    /// not — for container health checks.
    Healthcheck(cmd::healthcheck::Args),
    /// Serve the Language Server Protocol over stdin/stdout, for editors (README: "Editor
    /// support").
    ///
    /// For workflow, form and crate files: the diagnostics of `weft validate` as you type;
    /// completion of actions, their parameters, task names, `CTX.`/`TASKS.` names, filters,
    /// tests and trigger keys; hover; go to definition; the outline.
    Lsp(cmd::lsp::Args),
    /// Print the shell completion script for bash, zsh, fish, powershell or elvish (README:
    /// "Shell completions and man pages" says where to put it).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print weft's man page (roff), or with --dir write one page per command and subcommand
    /// (weft.1, weft-run.1, weft-executions-show.1, …).
    Man {
        /// Write every page into this folder (created if missing) instead of printing the
        /// main page.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    // The configuration file fills in the environment before the command line is read for
    // good (see `config`): a first parse finds `--config` / `WEFT_CONFIG`.
    let first = Cli::command().get_matches();
    let explicit =
        first
            .get_one::<std::path::PathBuf>("config")
            .map(|p| match first.value_source("config") {
                Some(clap::parser::ValueSource::EnvVariable) => (p.clone(), "WEFT_CONFIG"),
                _ => (p.clone(), "--config"),
            });
    let mut loaded = match config::find(explicit) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: no other thread has been started yet.
    unsafe { config::apply(&mut loaded) };
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // `weft config show` reports where each flag's value came from.
    let mut leaf = &matches;
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    // `weft … | head` should end quietly, as other command-line tools do. Servers keep Rust's
    // default (SIGPIPE ignored): a client hanging up must not kill them.
    #[cfg(unix)]
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Sim(_) | Command::Worker(_)
    ) {
        // SAFETY: called before any thread is started; restores the default disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    if let Err(e) = init_logging() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(args),
        Command::Executions(c) => cmd::executions::run(c),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Test(args) => cmd::test::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Schema { kind } => cmd::schema::run(kind),
        Command::Form(c) => cmd::form::run(c),
        Command::Actions(c) => cmd::actions::run(c),
        Command::Sim(args) => cmd::sim::run(args),
        Command::Deploy(args) => cmd::deploy::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Worker(args) => cmd::worker::run(args),
        Command::Trigger(c) => cmd::trigger::run(c),
        Command::Sync(c) => cmd::sync::run(c),
        Command::Org(c) => cmd::org::run(c),
        Command::Integration(c) => cmd::integration::run(c),
        Command::Mapping(args) => cmd::mapping::run(args),
        Command::Crate(c) => cmd::crate_cmd::run(c),
        Command::Config(c) => cmd::config::run(c, &loaded, leaf),
        Command::Healthcheck(args) => cmd::healthcheck::run(args),
        Command::Lsp(args) => cmd::lsp::run(args),
        Command::Completions { shell } => cmd::docs::completions(shell),
        Command::Man { dir } => cmd::docs::man(dir.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{:?}", err);
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr; `WEFT_LOG=info` (or debug, or an env-filter) shows executions and
/// tasks. `WEFT_LOG_FORMAT=json` writes one JSON object per line for log collectors, with the
/// fields of the spans the event happened in (an execution's `execution_id` and `workflow`, a
/// task's `task` and `action`), so every line of a run can be found by its execution.
fn init_logging() -> Result<(), String> {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG").unwrap_or_else(|_| "warn".into())
    };
    let format = std::env::var("WEFT_LOG_FORMAT").unwrap_or_default();
    match format.trim() {
        "" | "text" => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
        "json" => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
        other => {
            return Err(format!(
                "WEFT_LOG_FORMAT (or log_format in weft.toml) is `{other}`: use `text` or `json`"
            ));
        }
    }
    Ok(())
}
