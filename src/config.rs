//! `weft.toml`: the operators' configuration file.
//!
//! Every setting of `weft serve` and `weft worker` has a key in the file and an environment
//! variable; some also have a flag. Precedence: flag > environment > file > default. One table,
//! [`SETTINGS`], names them all; it drives reading the file, `weft config show` and the docs.
//!
//! How the file takes effect: each key it sets whose environment variable is unset becomes
//! that variable for this process, before the command line is parsed. Flags and environment
//! are then resolved by clap (its `env` attribute, then the default) exactly as without a file,
//! and the settings libraries read from the environment (`WEFT_REDACT_HEADERS`,
//! `WEFT_DATABASE_MAX_CONNECTIONS`…) see the file's values too — one resolution for all.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cmd::engine::{DEFAULT_DATABASE, redact_url};

/// The file looked for in the working directory when neither `--config` nor `WEFT_CONFIG`
/// names one.
pub const DEFAULT_FILE: &str = "weft.toml";

/// What a setting's value may be in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// A non-negative integer.
    Count,
    /// An array of strings (the environment variable takes them comma-separated).
    List,
    /// One of these strings.
    Choice(&'static [&'static str]),
}

/// How a setting's value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// As it is.
    No,
    /// `***`.
    Whole,
    /// A URL whose password is replaced by `***`.
    UrlPassword,
}

/// One setting: its key in `weft.toml`, its environment variable, its flag if it has one.
#[derive(Debug)]
pub struct Setting {
    /// The key in `weft.toml`.
    pub key: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The flag's clap id (its long name with `_`), when the setting has a flag.
    pub flag: Option<&'static str>,
    /// The value used when nothing sets it (`None`: unset, the feature is off or derived).
    pub default: Option<&'static str>,
    /// What the file may give.
    pub kind: Kind,
    /// Whether `weft config show` masks it.
    pub secret: Secret,
    /// What it does, for `weft config show`.
    pub help: &'static str,
}

/// Every setting, in the order `weft config show` prints them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "listen",
        env: "WEFT_LISTEN",
        flag: Some("listen"),
        default: Some("127.0.0.1:8080"),
        kind: Kind::Text,
        secret: Secret::No,
        help: "address `weft serve` listens on",
    },
    Setting {
        key: "public_url",
        env: "WEFT_PUBLIC_URL",
        flag: Some("public_url"),
        default: None,
        kind: Kind::Text,
        secret: Secret::No,
        help: "base URL webhooks and form links are reached at (default: the bound address)",
    },
    Setting {
        key: "database",
        env: "WEFT_DATABASE_URL",
        flag: Some("database"),
        default: Some(DEFAULT_DATABASE),
        kind: Kind::Text,
        secret: Secret::UrlPassword,
        help: "sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
    },
    Setting {
        key: "database_max_connections",
        env: "WEFT_DATABASE_MAX_CONNECTIONS",
        flag: None,
        default: Some("10"),
        kind: Kind::Count,
        secret: Secret::No,
        help: "PostgreSQL pool size per process",
    },
    Setting {
        key: "integrations",
        env: "WEFT_INTEGRATIONS",
        flag: Some("integrations"),
        default: None,
        kind: Kind::Text,
        secret: Secret::No,
        help: "YAML file of integration instances",
    },
    Setting {
        key: "workers",
        env: "WEFT_WORKERS",
        flag: Some("workers"),
        default: Some("4"),
        kind: Kind::Count,
        secret: Secret::No,
        help: "executions a process runs at once",
    },
    Setting {
        key: "lease_secs",
        env: "WEFT_LEASE_SECS",
        flag: Some("lease"),
        default: Some("30"),
        kind: Kind::Count,
        secret: Secret::No,
        help: "seconds a process holds an execution without renewing it",
    },
    Setting {
        key: "retention",
        env: "WEFT_RETENTION",
        flag: Some("retention"),
        default: None,
        kind: Kind::Text,
        secret: Secret::No,
        help: "delete finished executions older than this (90d); default: keep all",
    },
    Setting {
        key: "log_level",
        env: "WEFT_LOG",
        flag: None,
        default: Some("warn"),
        kind: Kind::Text,
        secret: Secret::No,
        help: "error, warn, info, debug, trace, or an env-filter (weft_engine=debug,info)",
    },
    Setting {
        key: "log_format",
        env: "WEFT_LOG_FORMAT",
        flag: None,
        default: Some("text"),
        kind: Kind::Choice(&["text", "json"]),
        secret: Secret::No,
        help: "text for people, json for machines (one object per line)",
    },
    Setting {
        key: "api_token",
        env: "WEFT_API_TOKEN",
        flag: None,
        default: None,
        kind: Kind::Text,
        secret: Secret::Whole,
        help: "the API token (default: one generated and shown once)",
    },
    Setting {
        key: "metrics_token",
        env: "WEFT_METRICS_TOKEN",
        flag: None,
        default: None,
        kind: Kind::Text,
        secret: Secret::Whole,
        help: "bearer token /metrics requires (default: open)",
    },
    Setting {
        key: "secret_key",
        env: "WEFT_SECRET_KEY",
        flag: None,
        default: None,
        kind: Kind::Text,
        secret: Secret::Whole,
        help: "key or passphrase secrets are sealed with (default: secret.key beside a SQLite file)",
    },
    Setting {
        key: "trusted_proxies",
        env: "WEFT_TRUSTED_PROXIES",
        flag: None,
        default: None,
        kind: Kind::List,
        secret: Secret::No,
        help: "reverse proxies whose X-Forwarded-For names a webhook's sender",
    },
    Setting {
        key: "redact_headers",
        env: "WEFT_REDACT_HEADERS",
        flag: None,
        default: None,
        kind: Kind::List,
        secret: Secret::No,
        help: "extra credential header names never stored",
    },
    Setting {
        key: "crates_dir",
        env: "WEFT_CRATES_DIR",
        flag: None,
        default: None,
        kind: Kind::Text,
        secret: Secret::No,
        help: "the crates library folder (default: ./crates-library)",
    },
];

/// What can be wrong with the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error(
        "cannot read the configuration file {path} (named by {by}): {source}; create it, or name an existing file"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// `--config` or `WEFT_CONFIG`.
        by: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{path}:{line}:{column}: not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// 1-based, in characters.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A key no setting has.
    #[error("{path}:{line}:{column}: unknown key `{key}`{hint}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// 1-based, in characters.
        column: usize,
        /// The key.
        key: String,
        /// `; did you mean …?` and the known keys.
        hint: String,
    },
    /// A value of the wrong type or not one of the choices.
    #[error("{path}:{line}:{column}: `{key}` must be {expected}, not {found}")]
    Value {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// 1-based, in characters.
        column: usize,
        /// The key.
        key: String,
        /// What it must be.
        expected: String,
        /// What it is.
        found: String,
    },
}

/// A value the file gives.
#[derive(Debug, Clone)]
pub struct FileValue {
    /// The setting.
    pub setting: &'static Setting,
    /// As its environment variable takes it.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// The configuration file in effect, if any.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The file (`None`: none given and no `./weft.toml`).
    pub path: Option<PathBuf>,
    /// Its values, in file order.
    pub values: Vec<FileValue>,
    /// The environment variables the file set (those that were unset).
    pub applied: Vec<&'static str>,
}

impl Loaded {
    /// The file's value for `setting`, if it gives one.
    pub fn value(&self, setting: &Setting) -> Option<&FileValue> {
        self.values.iter().find(|v| v.setting.key == setting.key)
    }
}

/// Finds the file: `explicit` (`--config` or `WEFT_CONFIG`, which must exist), else
/// `./weft.toml` when there is one; reads and checks it.
pub fn find(explicit: Option<(PathBuf, &'static str)>) -> Result<Loaded, ConfigError> {
    let (path, by) = match explicit {
        Some(given) => given,
        None => {
            let here = PathBuf::from(DEFAULT_FILE);
            if !here.is_file() {
                return Ok(Loaded::default());
            }
            (here, "its presence in the working directory")
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        by,
        source,
    })?;
    let values = parse(&path, &text)?;
    Ok(Loaded {
        path: Some(path),
        values,
        applied: Vec::new(),
    })
}

/// Checks every key and value of `text` against [`SETTINGS`].
pub fn parse(path: &Path, text: &str) -> Result<Vec<FileValue>, ConfigError> {
    use toml::de::{DeTable, DeValue};
    let at = |offset: usize| position(text, offset);
    let table = DeTable::parse(text).map_err(|e| {
        let (line, column) = at(e.span().map(|s| s.start).unwrap_or(0));
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    // The parser's table is sorted by key; file order reports the first problem first.
    let mut entries: Vec<_> = table.get_ref().iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut values = Vec::new();
    for (key, value) in entries {
        let (line, column) = at(key.span().start);
        let name = key.get_ref().as_ref();
        let Some(setting) = SETTINGS.iter().find(|s| s.key == name) else {
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                line,
                column,
                key: name.to_string(),
                hint: hint(name),
            });
        };
        let wrong = |expected: String| {
            let (line, column) = at(value.span().start);
            ConfigError::Value {
                path: path.to_path_buf(),
                line,
                column,
                key: name.to_string(),
                expected,
                found: describe(value.get_ref()),
            }
        };
        let text_value = match (setting.kind, value.get_ref()) {
            (Kind::Text, DeValue::String(s)) => s.to_string(),
            (Kind::Text, _) => return Err(wrong("a string".into())),
            (Kind::Count, DeValue::Integer(i)) => {
                match u64::from_str_radix(i.as_str(), i.radix()) {
                    Ok(n) => n.to_string(),
                    Err(_) => return Err(wrong("a non-negative integer".into())),
                }
            }
            (Kind::Count, _) => return Err(wrong("a non-negative integer".into())),
            (Kind::List, DeValue::Array(items)) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) if !s.contains(',') => out.push(s.to_string()),
                        _ => return Err(wrong("an array of strings without commas".into())),
                    }
                }
                out.join(",")
            }
            (Kind::List, _) => return Err(wrong("an array of strings".into())),
            (Kind::Choice(choices), DeValue::String(s)) if choices.contains(&s.as_ref()) => {
                s.to_string()
            }
            (Kind::Choice(choices), _) => {
                return Err(wrong(format!("one of \"{}\"", choices.join("\", \""))));
            }
        };
        values.push(FileValue {
            setting,
            value: text_value,
            line,
        });
    }
    Ok(values)
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// A TOML value's type, for messages.
fn describe(value: &toml::de::DeValue<'_>) -> String {
    use toml::de::DeValue;
    match value {
        DeValue::String(s) => format!("the string \"{s}\""),
        DeValue::Integer(i) => format!("the integer {}", i.as_str()),
        DeValue::Float(f) => format!("the number {}", f.as_str()),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(_) => "a date".into(),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// `; did you mean `listen`?` for a misspelt key (or its environment variable's name), then
/// the known keys.
fn hint(key: &str) -> String {
    // A key may also be mistyped as its environment variable's name (`WEFT_LISTEN`).
    let envs: Vec<(String, &str)> = SETTINGS
        .iter()
        .map(|s| (s.env.to_ascii_lowercase(), s.key))
        .collect();
    let candidates = SETTINGS
        .iter()
        .map(|s| s.key)
        .chain(envs.iter().map(|(e, _)| e.as_str()));
    let best = weft_engine::suggest::closest(key, candidates)
        .map(|c| envs.iter().find(|(e, _)| e == c).map_or(c, |(_, k)| *k));
    let known = SETTINGS
        .iter()
        .map(|s| s.key)
        .collect::<Vec<_>>()
        .join(", ");
    match best {
        Some(k) => format!(
            "; {} (known keys: {known})",
            weft_engine::suggest::question(k)
        ),
        None => format!(" (known keys: {known})"),
    }
}

/// Sets the environment variable of each value the file gives whose variable is unset (the
/// environment wins over the file).
///
/// # Safety
///
/// Must be called before any other thread is started (it sets environment variables).
pub unsafe fn apply(loaded: &mut Loaded) {
    for v in &loaded.values {
        if std::env::var_os(v.setting.env).is_none() {
            // SAFETY: the caller guarantees this process has one thread.
            unsafe { std::env::set_var(v.setting.env, &v.value) };
            loaded.applied.push(v.setting.env);
        }
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A flag on the command line.
    Flag,
    /// Its environment variable.
    Env,
    /// The file, at this line.
    File(usize),
    /// Nothing set it.
    Default,
}

/// A setting's value and where it came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The setting.
    pub setting: &'static Setting,
    /// The value (`None`: unset), unmasked.
    pub value: Option<String>,
    /// Where it came from.
    pub source: Source,
}

impl Resolved {
    /// The value as it may be shown: secrets masked.
    pub fn shown(&self) -> Option<String> {
        let v = self.value.as_ref()?;
        Some(match self.setting.secret {
            Secret::No => v.clone(),
            Secret::Whole => "***".into(),
            Secret::UrlPassword => redact_url(v),
        })
    }
}

/// Every setting's value and source, given the matches of a command that takes the flags.
pub fn resolve(loaded: &Loaded, matches: &clap::ArgMatches) -> Vec<Resolved> {
    use clap::parser::ValueSource;
    SETTINGS
        .iter()
        .map(|setting| {
            let from_env = || {
                let value = std::env::var_os(setting.env).map(lossy);
                if value.is_none() {
                    return (setting.default.map(String::from), Source::Default);
                }
                match loaded.value(setting) {
                    Some(f) if loaded.applied.contains(&setting.env) => {
                        (value, Source::File(f.line))
                    }
                    _ => (value, Source::Env),
                }
            };
            let flag_source = setting
                .flag
                .and_then(|id| matches.try_get_raw(id).ok().flatten().map(|_| id))
                .and_then(|id| matches.value_source(id).map(|s| (id, s)));
            let (value, source) = match flag_source {
                Some((id, ValueSource::CommandLine)) => {
                    let raw = matches
                        .get_raw(id)
                        .and_then(|mut v| v.next())
                        .map(|v| lossy(v.to_os_string()));
                    (raw, Source::Flag)
                }
                _ => from_env(),
            };
            Resolved {
                setting,
                value,
                source,
            }
        })
        .collect()
}

fn lossy(s: OsString) -> String {
    s.to_string_lossy().into_owned()
}

/// `weft config show`'s text: one `key = value  # source` line per setting.
pub fn render_text(loaded: &Loaded, settings: &[Resolved]) -> String {
    let mut out = String::new();
    match &loaded.path {
        Some(p) => {
            let _ = writeln!(out, "# configuration file: {}", p.display());
        }
        None => {
            let _ = writeln!(
                out,
                "# no configuration file (--config FILE, WEFT_CONFIG, or ./{DEFAULT_FILE})"
            );
        }
    }
    let file = loaded
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    for r in settings {
        let value = match r.shown() {
            Some(v) if r.setting.kind == Kind::Count && v.parse::<u64>().is_ok() => v,
            Some(v) => format!("{v:?}"),
            None => "(unset)".into(),
        };
        let source = match &r.source {
            Source::Flag => format!(
                "flag --{}",
                r.setting.flag.unwrap_or_default().replace('_', "-")
            ),
            Source::Env => format!("env {}", r.setting.env),
            Source::File(line) => format!("file {file}:{line}"),
            Source::Default => "default".into(),
        };
        let _ = writeln!(
            out,
            "{} = {value}  # {source}; {} ({})",
            r.setting.key, r.setting.help, r.setting.env
        );
    }
    out
}

/// `weft config show --json`.
pub fn render_json(loaded: &Loaded, settings: &[Resolved]) -> serde_json::Value {
    let file = loaded.path.as_ref().map(|p| p.display().to_string());
    let list = settings
        .iter()
        .map(|r| {
            let (source, line) = match &r.source {
                Source::Flag => ("flag", None),
                Source::Env => ("env", None),
                Source::File(l) => ("file", Some(*l)),
                Source::Default => ("default", None),
            };
            serde_json::json!({
                "key": r.setting.key,
                "value": r.shown(),
                "source": source,
                "line": line,
                "env": r.setting.env,
                "flag": r.setting.flag.map(|f| format!("--{}", f.replace('_', "-"))),
                "secret": r.setting.secret != Secret::No,
            })
        })
        .collect::<Vec<_>>();
    serde_json::json!({ "file": file, "settings": list })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("weft.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn values_become_what_the_environment_takes() {
        let v = parse(
            Path::new("weft.toml"),
            "listen = \"0.0.0.0:80\"\n\nworkers = 8\ntrusted_proxies = [\"10.0.0.1\", \"10.0.0.2\"]\nlog_format = \"json\"\n",
        )
        .unwrap();
        let got: Vec<_> = v
            .iter()
            .map(|v| (v.setting.env, v.value.as_str(), v.line))
            .collect();
        assert_eq!(
            got,
            [
                ("WEFT_LISTEN", "0.0.0.0:80", 1),
                ("WEFT_WORKERS", "8", 3),
                ("WEFT_TRUSTED_PROXIES", "10.0.0.1,10.0.0.2", 4),
                ("WEFT_LOG_FORMAT", "json", 5),
            ]
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_place_and_the_closest_key() {
        let e = err("workers = 2\n  listn = \"x\"\n");
        assert!(e.starts_with("weft.toml:2:3: unknown key `listn`"), "{e}");
        assert!(e.contains("did you mean `listen`?"), "{e}");
        // The environment variable's name leads to its key too.
        let e = err("WEFT_LEASE_SECS = 4\n");
        assert!(e.contains("did you mean `lease_secs`?"), "{e}");
        let e = err("[server]\nlisten = \"x\"\n");
        assert!(e.contains("unknown key `server`"), "{e}");
    }

    #[test]
    fn a_wrong_type_names_the_key_and_what_it_must_be() {
        let e = err("workers = \"four\"\n");
        assert_eq!(
            e,
            "weft.toml:1:11: `workers` must be a non-negative integer, not the string \"four\""
        );
        let e = err("workers = -1\n");
        assert!(e.contains("non-negative integer"), "{e}");
        let e = err("log_format = \"xml\"\n");
        assert!(e.contains("one of \"text\", \"json\""), "{e}");
        let e = err("listen = 8080\n");
        assert!(
            e.contains("`listen` must be a string, not the integer 8080"),
            "{e}"
        );
    }

    #[test]
    fn a_syntax_error_has_its_place() {
        let e = err("listen = \"x\"\nworkers = = 3\n");
        assert!(e.starts_with("weft.toml:2:"), "{e}");
    }

    #[test]
    fn secrets_are_masked() {
        let shown = |key: &str, value: &str| {
            Resolved {
                setting: SETTINGS.iter().find(|s| s.key == key).unwrap(),
                value: Some(value.into()),
                source: Source::Env,
            }
            .shown()
            .unwrap()
        };
        assert_eq!(shown("api_token", "wft_abc"), "***");
        assert_eq!(
            shown("database", "postgres://weft:hunter2@db:5432/weft"),
            "postgres://weft:***@db:5432/weft"
        );
        assert_eq!(shown("listen", "0.0.0.0:8080"), "0.0.0.0:8080");
    }

    #[test]
    fn every_key_is_unique_and_every_flag_is_a_flag_of_config_show() {
        use clap::CommandFactory;
        let cmd = crate::Cli::command();
        let show = cmd
            .find_subcommand("config")
            .and_then(|c| c.find_subcommand("show"))
            .expect("weft config show");
        for (i, s) in SETTINGS.iter().enumerate() {
            assert!(
                SETTINGS[..i]
                    .iter()
                    .all(|o| o.key != s.key && o.env != s.env)
            );
            if let Some(flag) = s.flag {
                assert!(show.get_arguments().any(|a| a.get_id() == flag), "{flag}");
            }
        }
    }
}
