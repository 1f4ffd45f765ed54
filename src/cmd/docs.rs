//! `weft completions SHELL` and `weft man [--dir DIR]`: generated from the same clap
//! definition as `weft --help`, so they never drift from it.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use miette::IntoDiagnostic;

/// Prints the completion script of `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> miette::Result<ExitCode> {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(shell, &mut cmd, "weft", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Prints the main man page, or writes every page into `dir`.
pub fn man(dir: Option<&Path>) -> miette::Result<ExitCode> {
    let cmd = crate::Cli::command();
    match dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .into_diagnostic()?;
            use std::io::Write as _;
            std::io::stdout().write_all(&out).into_diagnostic()?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .into_diagnostic()
                .map_err(|e| e.wrap_err(format!("cannot create {}", dir.display())))?;
            clap_mangen::generate_to(cmd, dir)
                .into_diagnostic()
                .map_err(|e| {
                    e.wrap_err(format!("cannot write man pages into {}", dir.display()))
                })?;
            let mut pages: Vec<String> = std::fs::read_dir(dir)
                .into_diagnostic()?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("weft") && n.ends_with(".1"))
                .collect();
            pages.sort();
            eprintln!("wrote {} man pages into {}", pages.len(), dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
