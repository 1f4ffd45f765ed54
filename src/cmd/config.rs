//! `weft config`: the settings of `weft serve` and `weft worker`, and where each came from.

use std::process::ExitCode;

use crate::config::{self, Loaded};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print every setting with its value and where it came from (flag, env, file:line,
    /// default); secrets (tokens, the secret key, a database URL's password) are masked.
    ///
    /// Takes the flags `weft serve` takes, so `weft config show --workers 8` shows what
    /// `weft serve --workers 8` would use.
    Show {
        /// Print JSON: `{"file", "settings": [{"key", "value", "source", "line", "env", "flag"}]}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: super::serve::Settings,
    },
}

pub fn run(
    command: Command,
    loaded: &Loaded,
    matches: &clap::ArgMatches,
) -> miette::Result<ExitCode> {
    match command {
        Command::Show { json, settings: _ } => {
            let resolved = config::resolve(loaded, matches);
            if json {
                let out = config::render_json(loaded, &resolved);
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                print!("{}", config::render_text(loaded, &resolved));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
