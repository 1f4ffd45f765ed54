//! `weft crate list|show|install|upgrade|detach|uninstall|installed`: packaged workflows
//! installed per organization. The use cases (the library, the checks, installing,
//! upgrading, detaching, uninstalling) are `weft_service::crates`'s, shared with the API;
//! this module finds a crate the command line names (a library crate, a folder, a
//! `.tar.gz`) and prints.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};
use weft_engine::bundle::{self, CrateDir, Given, Version};
use weft_engine::executor::Engine;
use weft_engine::store::CrateInstall;
use weft_service::ErrorKind;
use weft_service::crates::{
    self, FormChange, InstallError, InstalledFor, NewInstall, Report, UpgradeRequest, Upgraded,
};

use super::engine::EngineArgs;
use super::org::service_failure;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The crates in the library (crates-library/, or WEFT_CRATES_DIR) with the orgs they
    /// are installed for.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Describe a crate: requirements, parameters, workflows and triggers, forms.
    Show {
        /// A library crate's name, or a crate folder.
        name: String,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Install a crate for an organization: checks the org, parameters and requirements,
    /// deploys each workflow as `{workflow}--{org}` and records the install (exit 2 when
    /// something is missing, every problem listed).
    Install {
        /// A library crate's name, a crate folder or a .tar.gz of one.
        source: String,
        /// The organization (id or name).
        #[arg(long)]
        org: String,
        /// A parameter `NAME=VALUE` (repeatable; read by the parameter's type).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Who the triggers run for (repeatable; default the org).
        #[arg(long = "run-for", value_name = "ORG")]
        run_for: Vec<String>,
        /// Enable the triggers (default: installed disabled).
        #[arg(long)]
        enable: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Upgrade an install to a newer version, keeping its parameters: from `--from`, else
    /// the library, else the folder or archive it was installed from.
    Upgrade {
        /// The crate's name.
        name: String,
        /// The newer version: a crate folder or a .tar.gz of one.
        #[arg(long, value_name = "SOURCE")]
        from: Option<String>,
        /// The organization (id or name).
        #[arg(long)]
        org: String,
        /// A parameter `NAME=VALUE` to set or change (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Mark an install as locally edited: upgrades leave it alone.
    Detach {
        /// The crate's name.
        name: String,
        /// The organization (id or name).
        #[arg(long)]
        org: String,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Disable an install's triggers and remove its record (deployed versions and the
    /// crate's forms stay).
    Uninstall {
        /// The crate's name.
        name: String,
        /// The organization (id or name).
        #[arg(long)]
        org: String,
        #[command(flatten)]
        db: EngineArgs,
    },
    /// Installed crates, per organization.
    Installed {
        /// Only this organization's (id or name).
        #[arg(long)]
        org: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: EngineArgs,
    },
}

pub fn run(cmd: Command) -> miette::Result<ExitCode> {
    super::engine::runtime()?.block_on(run_async(cmd))
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn failed(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

/// Every crate of the library, by name; unreadable ones are reported on stderr and skipped.
fn library() -> crates::Library {
    let lib = crates::library();
    for e in &lib.problems {
        eprintln!("warning: skipped crate: {e}");
    }
    lib
}

/// The exit code of a refusal of this kind: 2 for a usage error, else 1.
fn code_of(kind: ErrorKind) -> ExitCode {
    ExitCode::from(if kind == ErrorKind::Usage { 2 } else { 1 })
}

fn print_errors(errs: &[bundle::CrateError]) {
    for e in errs {
        eprintln!("error: {e}");
    }
}

/// A crate found by name or path; `_tmp` keeps an extracted archive alive.
struct Found {
    dir: CrateDir,
    source: String,
    _tmp: Option<tempfile::TempDir>,
}

fn is_archive(s: &str) -> bool {
    s.ends_with(".tar.gz") || s.ends_with(".tgz")
}

/// Finds a crate: an archive, a folder, or a library crate's name.
fn find(arg: &str) -> Result<Found, ExitCode> {
    let path = Path::new(arg);
    if is_archive(arg) {
        if !path.is_file() {
            return Err(usage(format!("no archive {arg}")));
        }
        let tmp =
            tempfile::tempdir().map_err(|e| failed(format!("cannot make a temp folder: {e}")))?;
        if let Err(e) = extract(path, tmp.path()) {
            return Err(failed(format!("{arg}: {e}")));
        }
        let root = crate_root(tmp.path())
            .ok_or_else(|| failed(format!("{arg}: no {} in the archive", bundle::MANIFEST)))?;
        let dir = bundle::read_dir(&root).map_err(|errs| {
            print_errors(&errs);
            ExitCode::from(1)
        })?;
        return Ok(Found {
            dir,
            source: abs(path),
            _tmp: Some(tmp),
        });
    }
    if path.is_dir() {
        if !path.join(bundle::MANIFEST).is_file() {
            return Err(usage(format!(
                "{arg} is not a crate: it has no {}",
                bundle::MANIFEST
            )));
        }
        let dir = bundle::read_dir(path).map_err(|errs| {
            print_errors(&errs);
            ExitCode::from(1)
        })?;
        return Ok(Found {
            dir,
            source: abs(path),
            _tmp: None,
        });
    }
    let lib = library();
    match lib.find(arg) {
        Ok(c) => Ok(Found {
            source: abs(&c.dir),
            dir: c.clone(),
            _tmp: None,
        }),
        Err(e) => {
            let place = crates::library_dir()
                .map(|d| format!(" (the library: {})", d.display()))
                .unwrap_or_default();
            eprintln!("error: {e}, and no such folder or .tar.gz{place}");
            Err(code_of(e.kind()))
        }
    }
}

fn abs(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// The folder holding `crate.yaml`: the archive's top, or its single top-level folder.
fn crate_root(dir: &Path) -> Option<PathBuf> {
    if dir.join(bundle::MANIFEST).is_file() {
        return Some(dir.to_path_buf());
    }
    let subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    match subs.as_slice() {
        [one] if one.join(bundle::MANIFEST).is_file() => Some(one.clone()),
        _ => None,
    }
}

/// How much a crate archive may unpack to: crates are a few YAML files, and an archive is
/// untrusted input (a gzip bomb or a flood of entries must not fill the disk or the memory).
const MAX_UNPACKED_BYTES: u64 = 16 * 1024 * 1024;
/// Entries (files, folders…) in a crate archive.
const MAX_ENTRIES: usize = 1_000;
/// One file in a crate archive.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// The tar stream once decompressed (the files plus their headers and padding), counted as
/// it is read: the gzip header's claim is never trusted.
const MAX_DECOMPRESSED_BYTES: u64 = 32 * 1024 * 1024;

fn mib(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

/// A reader that fails once more than `limit` bytes came through it.
struct Capped<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
    limit: u64,
}

impl<R: std::io::Read> std::io::Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.read.get() + n as u64;
        self.read.set(total);
        if total > self.limit {
            return Err(std::io::Error::other(too_much_decompressed()));
        }
        Ok(n)
    }
}

fn too_much_decompressed() -> String {
    format!(
        "refused: the archive decompresses to more than {} MiB (the limit for a crate archive)",
        mib(MAX_DECOMPRESSED_BYTES)
    )
}

/// Extracts a .tar.gz into `into`, refusing entries that would land outside it (absolute
/// paths, `..`) and links, and archives past the limits above (entries, one file's size,
/// the unpacked total, the decompressed stream).
pub fn extract(archive: &Path, into: &Path) -> Result<(), String> {
    let file = std::fs::File::open(archive).map_err(|e| format!("cannot open it: {e}"))?;
    let decompressed = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut ar = tar::Archive::new(Capped {
        inner: flate2::read::GzDecoder::new(file),
        read: decompressed.clone(),
        limit: MAX_DECOMPRESSED_BYTES,
    });
    // An I/O error past the decompression limit is that limit, whatever tar made of it.
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        if decompressed.get() > MAX_DECOMPRESSED_BYTES {
            too_much_decompressed()
        } else {
            format!("{what}: {e}")
        }
    };
    let entries = ar.entries().map_err(|e| fail("not a .tar.gz", &e))?;
    let (mut count, mut unpacked) = (0usize, 0u64);
    for entry in entries {
        let mut entry = entry.map_err(|e| fail("not a .tar.gz", &e))?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(format!(
                "refused: the archive has more than {MAX_ENTRIES} entries (the limit for a crate archive)"
            ));
        }
        let path = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        let unsafe_path = path.is_absolute()
            || path.components().any(|c| {
                matches!(
                    c,
                    Component::ParentDir | Component::RootDir | Component::Prefix(_)
                )
            });
        if unsafe_path {
            return Err(format!(
                "refused: entry `{}` would be written outside the crate folder",
                path.display()
            ));
        }
        let kind = entry.header().entry_type();
        let target = into.join(&path);
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", path.display()))?;
        } else if kind.is_file() {
            // The entry's size (from its header or a PAX record) bounds what is read for it.
            let size = entry.size();
            if size > MAX_FILE_BYTES {
                return Err(format!(
                    "refused: entry `{}` is {size} bytes, more than the {} MiB limit for one file in a crate archive",
                    path.display(),
                    mib(MAX_FILE_BYTES)
                ));
            }
            unpacked += size;
            if unpacked > MAX_UNPACKED_BYTES {
                return Err(format!(
                    "refused: the archive unpacks to more than {} MiB (the limit for a crate archive)",
                    mib(MAX_UNPACKED_BYTES)
                ));
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            entry
                .unpack(&target)
                .map_err(|e| fail(&path.display().to_string(), &e))?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            return Err(format!("refused: entry `{}` is a link", path.display()));
        }
    }
    Ok(())
}

fn parse_params(raw: &[String]) -> Result<Vec<(String, Given)>, ExitCode> {
    raw.iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), Given::Text(v.to_string())))
            }
            _ => Err(usage(format!("--param takes NAME=VALUE, got `{p}`"))),
        })
        .collect()
}

async fn run_async(cmd: Command) -> miette::Result<ExitCode> {
    match cmd {
        Command::List { json, db } => {
            let engine = super::engine::open(&db).await?;
            list(&engine, json).await
        }
        Command::Show { name, db } => {
            let found = match find(&name) {
                Ok(f) => f,
                Err(code) => return Ok(code),
            };
            let engine = super::engine::open(&db).await?;
            let installs = match crates::installs(engine.store().as_ref(), None).await {
                Ok(i) => i,
                Err(e) => return Ok(service_failure(&e)),
            };
            show(&found, &installs);
            Ok(ExitCode::SUCCESS)
        }
        Command::Install {
            source,
            org,
            params,
            run_for,
            enable,
            db,
        } => {
            let given = match parse_params(&params) {
                Ok(g) => g,
                Err(code) => return Ok(code),
            };
            let found = match find(&source) {
                Ok(f) => f,
                Err(code) => return Ok(code),
            };
            let engine = super::engine::open(&db).await?;
            install(&engine, &found, &org, given, &run_for, enable).await
        }
        Command::Upgrade {
            name,
            from,
            org,
            params,
            db,
        } => {
            let given = match parse_params(&params) {
                Ok(g) => g,
                Err(code) => return Ok(code),
            };
            let engine = super::engine::open(&db).await?;
            upgrade(&engine, &name, from.as_deref(), &org, given).await
        }
        Command::Detach { name, org, db } => {
            let engine = super::engine::open(&db).await?;
            match crates::detach(engine.store().as_ref(), &name, &org).await {
                Ok(d) if d.already => {
                    println!("crate {name} for {} is already detached", d.install.org)
                }
                Ok(d) => println!(
                    "detached crate {name} for {}: `weft crate upgrade` leaves it alone",
                    d.install.org
                ),
                Err(e) => return Ok(service_failure(&e)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Uninstall { name, org, db } => {
            let engine = super::engine::open(&db).await?;
            uninstall(&engine, &name, &org).await
        }
        Command::Installed { org, json, db } => {
            let engine = super::engine::open(&db).await?;
            installed(&engine, org.as_deref(), json).await
        }
    }
}

/// `weft crate uninstall`: turns the install's triggers off and forgets the install (its
/// workflow versions stay for history).
async fn uninstall(engine: &Engine, name: &str, org: &str) -> miette::Result<ExitCode> {
    match crates::uninstall(engine.store().as_ref(), name, org).await {
        Ok(u) => {
            println!(
                "uninstalled crate {name} {} for {}: {} trigger(s) disabled; its workflow versions stay for history, its forms stay deployed",
                u.install.version, u.install.org, u.disabled
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(service_failure(&e)),
    }
}

/// `weft crate installed`: the installs (of one org, or all), as a table or JSON.
async fn installed(engine: &Engine, org: Option<&str>, json: bool) -> miette::Result<ExitCode> {
    let installs = match crates::installs(engine.store().as_ref(), org).await {
        Ok(i) => i,
        Err(e) => return Ok(service_failure(&e)),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&installs).expect("serializes")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if installs.is_empty() {
        println!("no crates installed");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 6]> = installs
        .iter()
        .map(|i| {
            [
                i.crate_name.clone(),
                i.org.clone(),
                i.version.clone(),
                if i.enabled { "yes" } else { "no" }.to_string(),
                if i.detached { "yes" } else { "no" }.to_string(),
                workflow_names(&i.workflows).join(", "),
            ]
        })
        .collect();
    table(
        &[
            "CRATE",
            "ORG",
            "VERSION",
            "ENABLED",
            "DETACHED",
            "WORKFLOWS",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

fn table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    let mut width = head.map(str::len);
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

fn workflow_names(workflows: &Value) -> Vec<String> {
    workflows
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["name"].as_str().map(str::to_string))
        .collect()
}

async fn list(engine: &Engine, json: bool) -> miette::Result<ExitCode> {
    let lib = library().crates;
    let installs = match crates::installs(engine.store().as_ref(), None).await {
        Ok(i) => i,
        Err(e) => return Ok(service_failure(&e)),
    };
    if json {
        let out: Vec<Value> = lib
            .iter()
            .map(|c| {
                let m = &c.manifest;
                json!({
                    "name": m.name,
                    "version": m.version.to_string(),
                    "description": m.description,
                    "path": c.dir.display().to_string(),
                    "installed": InstalledFor::of(&m.name, &installs),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("serializes")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if lib.is_empty() {
        match crates::library_dir() {
            Some(d) => println!("no crates in {}", d.display()),
            None => println!("no crate library (crates-library/ or WEFT_CRATES_DIR)"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 4]> = lib
        .iter()
        .map(|c| {
            let m = &c.manifest;
            let installed: Vec<String> = installs
                .iter()
                .filter(|i| i.crate_name == m.name)
                .map(|i| {
                    let newer = Version::parse(&i.version).is_some_and(|v| v < m.version);
                    format!(
                        "{}@{}{}{}",
                        i.org,
                        i.version,
                        if i.detached { " (detached)" } else { "" },
                        if newer && !i.detached {
                            " (upgradable)"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            [
                m.name.clone(),
                m.version.to_string(),
                m.description.clone(),
                if installed.is_empty() {
                    "-".into()
                } else {
                    installed.join(", ")
                },
            ]
        })
        .collect();
    table(&["NAME", "VERSION", "DESCRIPTION", "INSTALLED"], &rows);
    Ok(ExitCode::SUCCESS)
}

fn show(found: &Found, installs: &[CrateInstall]) {
    let c = &found.dir;
    let m = &c.manifest;
    println!("{} {}", m.name, m.version);
    println!("{}", m.description);
    if let Some(s) = c.summary() {
        println!("\n{s}");
    }
    println!("\nSource: {}", found.source);
    println!("\nRequires:");
    println!(
        "  integrations: {}",
        if m.integrations.is_empty() {
            "(none)".into()
        } else {
            m.integrations.join(", ")
        }
    );
    println!(
        "  variables: {}",
        if m.variables.is_empty() {
            "(none)".into()
        } else {
            m.variables.join(", ")
        }
    );
    println!("\nParameters:");
    if m.parameters.is_empty() {
        println!("  (none)");
    }
    for (name, p) in &m.parameters {
        let mut bits = vec![p.type_name.clone()];
        if p.required && p.default.is_none() {
            bits.push("required".into());
        }
        if let Some(d) = &p.default {
            bits.push(format!("default {d}"));
        }
        if let Some(a) = &p.allowed {
            bits.push(format!(
                "one of {}",
                a.iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !p.sets.is_empty() {
            let targets: Vec<String> = p.sets.iter().map(ToString::to_string).collect();
            bits.push(format!("sets trigger {}", targets.join(", ")));
        }
        let desc = p
            .description
            .as_deref()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default();
        println!("  {name} ({}){desc}", bits.join(", "));
    }
    println!("\nWorkflows:");
    let shared = c.shared_workflows();
    for (file, src) in &c.workflows {
        let doc: serde_yaml::Value = serde_yaml::from_str(src).unwrap_or_default();
        let name = doc["name"].as_str().unwrap_or("?");
        let desc = doc["description"]
            .as_str()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default();
        if shared.iter().any(|s| s == name) {
            println!(
                "  {name} ({file}){desc}, a form's options: installed once as {name}, for every org"
            );
            continue;
        }
        println!("  {name} ({file}){desc}, installed as {name}--ORG");
        for t in doc["triggers"].as_sequence().into_iter().flatten() {
            let tname = t["name"].as_str().unwrap_or("?");
            let ty = t["type"].as_str().unwrap_or("?");
            if ty == "webhook" {
                println!("    trigger {tname} ({ty}): POST /hooks/{tname}--ORG/ORG");
            } else {
                println!("    trigger {tname} ({ty})");
            }
        }
    }
    println!(
        "\nForms (installed once under their own names, for every org; uninstalling leaves them):"
    );
    if c.forms.is_empty() {
        println!("  (none)");
    }
    for f in &c.forms {
        println!(
            "  {} ({}) — {}; its link for an org: weft form link {} --org ORG",
            f.name, f.file, f.title, f.name
        );
    }
    let mine: Vec<String> = installs
        .iter()
        .filter(|i| i.crate_name == m.name)
        .map(|i| {
            format!(
                "{}@{}{}",
                i.org,
                i.version,
                if i.detached { " (detached)" } else { "" }
            )
        })
        .collect();
    println!(
        "\nInstalled for: {}",
        if mine.is_empty() {
            "(none)".to_string()
        } else {
            mine.join(", ")
        }
    );
}

async fn install(
    engine: &Engine,
    found: &Found,
    org: &str,
    given: Vec<(String, Given)>,
    run_for: &[String],
    enable: bool,
) -> miette::Result<ExitCode> {
    let new = NewInstall {
        dir: &found.dir,
        source: found.source.clone(),
        org: org.to_string(),
        given,
        run_for: run_for.to_vec(),
        enabled: enable,
    };
    let spin = super::progress::Progress::spinner(
        super::progress::wanted(false, false),
        &format!("installing {} for {org}", found.dir.manifest.name),
    );
    let done = crates::install(engine, new).await;
    spin.finish();
    Ok(match report_error("install", &found.dir, org, done) {
        Ok(r) => report(&found.dir, None, &r),
        Err(code) => code,
    })
}

/// Where the newer version of an install comes from: `--from`, else where it was installed
/// from, else the library.
fn upgrade_source(
    name: &str,
    from: Option<&str>,
    install: &CrateInstall,
) -> Result<Found, ExitCode> {
    match from {
        Some(src) if is_archive(src) || Path::new(src).is_dir() => find(src),
        Some(src) => Err(usage(format!(
            "--from {src}: no such crate folder or .tar.gz"
        ))),
        None => {
            if let Some(src) = install.source.as_deref().filter(|s| Path::new(s).exists()) {
                // Where it was installed from (the library's folder, or a folder or archive
                // outside it): a newer version is looked for there first.
                return find(src);
            }
            let lib = library();
            match lib.find(name) {
                Ok(c) => Ok(Found {
                    source: abs(&c.dir),
                    dir: c.clone(),
                    _tmp: None,
                }),
                Err(_) => Err(failed(format!(
                    "crate `{name}` is not in the library and its install source {} is gone: give the newer version with --from FOLDER|ARCHIVE",
                    install.source.as_deref().unwrap_or("(unknown)")
                ))),
            }
        }
    }
}

async fn upgrade(
    engine: &Engine,
    name: &str,
    from: Option<&str>,
    org: &str,
    given: Vec<(String, Given)>,
) -> miette::Result<ExitCode> {
    let install = match crates::find_install(engine.store().as_ref(), name, org).await {
        Ok(i) => i,
        Err(e) => return Ok(service_failure(&e)),
    };
    if let Err(e) = crates::upgradable(&install) {
        return Ok(service_failure(&e));
    }
    let found = match upgrade_source(name, from, &install) {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let org_id = install.org.clone();
    let req = UpgradeRequest {
        install,
        dir: &found.dir,
        source: found.source.clone(),
        given,
    };
    let spin = super::progress::Progress::spinner(
        super::progress::wanted(false, false),
        &format!("upgrading {name} for {org_id}"),
    );
    let done = crates::upgrade(engine, req).await;
    spin.finish();
    Ok(match report_error("upgrade", &found.dir, &org_id, done) {
        Ok(Upgraded::Current(i)) => {
            println!("crate {name} for {} is already at {}", i.org, i.version);
            ExitCode::SUCCESS
        }
        Ok(Upgraded::Newer(i)) => {
            println!(
                "crate {name} for {} is at {}, newer than the library's {}: nothing to do",
                i.org, i.version, found.dir.manifest.version
            );
            ExitCode::SUCCESS
        }
        Ok(Upgraded::Done { from, report: r }) => report(&found.dir, Some(&from), &r),
        Err(code) => code,
    })
}

/// Prints every reason an install or upgrade did not happen, and answers its exit code.
fn report_error<T>(
    verb: &str,
    dir: &CrateDir,
    org: &str,
    result: Result<T, InstallError>,
) -> Result<T, ExitCode> {
    let m = &dir.manifest;
    let e = match result {
        Ok(r) => return Ok(r),
        Err(e) => e,
    };
    let code = code_of(e.kind());
    match e {
        InstallError::Missing(problems) => {
            eprintln!(
                "error: cannot {verb} crate {} {} for {org}:",
                m.name, m.version
            );
            for p in &problems {
                eprintln!("  - {p}");
            }
        }
        InstallError::Invalid(errors) => {
            eprintln!(
                "error: crate {} {} has invalid workflows; nothing was deployed:",
                m.name, m.version
            );
            for e in &errors {
                eprintln!("  {e}");
            }
        }
        InstallError::Refused(e) => return Err(service_failure(&e)),
    }
    Err(code)
}

/// Prints what an install or upgrade did.
fn report(dir: &CrateDir, from: Option<&str>, r: &Report) -> ExitCode {
    let m = &dir.manifest;
    match from {
        Some(from) => println!(
            "upgraded crate {} for {} from {from} to {}",
            m.name, r.install.org, m.version
        ),
        None => println!(
            "installed crate {} {} for {}",
            m.name, m.version, r.install.org
        ),
    }
    let state = if r.install.enabled {
        "enabled"
    } else {
        "disabled"
    };
    for f in &r.forms {
        let what = match f.change {
            FormChange::Deployed => "deployed",
            FormChange::Unchanged => "already deployed",
            FormChange::Upgraded => "upgraded",
        };
        println!("  form {} v{} ({what})", f.name, f.version);
    }
    for d in &r.deployed {
        if d.shared {
            println!(
                "  workflow {} v{} (a form's options, for every org)",
                d.name, d.version
            );
            continue;
        }
        println!("  workflow {} v{}", d.name, d.version);
        for (t, kind) in &d.triggers {
            if kind == "webhook" {
                let url = r.hook_url(t);
                let org = url.rsplit('/').next().unwrap_or_default();
                println!(
                    "    trigger {t} ({kind}, {state}): POST {url} (its secret: weft trigger secret {} {t} --org {org})",
                    d.name
                );
            } else {
                println!("    trigger {t} ({kind}, {state})");
            }
        }
    }
    for (wf, t) in &r.dropped {
        println!("  workflow {wf} is no longer in the crate: trigger {t} disabled");
    }
    if !r.install.enabled && from.is_none() {
        println!(
            "Triggers are disabled: install with --enable, or enable them with `POST /api/triggers/{{workflow}}/{{trigger}}/enable`."
        );
    }
    ExitCode::SUCCESS
}
