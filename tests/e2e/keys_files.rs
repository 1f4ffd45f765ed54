//! Keys and files through the real binary: the database files, the key file and the folder
//! weft makes for them are owner-only; a broken key file or a short passphrase stops a
//! command with a clear message (no panic); a passphrase is stretched with a salt kept in
//! the database; crate archives past the size and entry limits are refused.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const PASSPHRASE: &str = "a passphrase long enough";
const SECRET: &str = "hunter2-e2e-secret";

/// A temp dir whose database is `TMP/.weft/weft.db` (the folder made by weft).
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn weft_dir(&self) -> PathBuf {
        self.dir.path().join(".weft")
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}/weft.db", self.weft_dir().display())
    }

    /// `weft ARGS --database sqlite://TMP/.weft/weft.db`, with `key` as WEFT_SECRET_KEY, or
    /// none (the key file beside the database).
    fn weft(&self, key: Option<&str>, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_weft"));
        c.current_dir(self.dir.path())
            .args(args)
            .arg("--database")
            .arg(self.db_url())
            .env_remove("WEFT_DATABASE_URL")
            .env_remove("WEFT_SECRET_KEY")
            .env_remove("WEFT_INTEGRATIONS")
            .env_remove("WEFT_CRATES_DIR")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        if let Some(key) = key {
            c.env("WEFT_SECRET_KEY", key);
        }
        c.output()
            .unwrap_or_else(|e| panic!("cannot run weft {args:?}: {e}"))
    }

    fn ok(&self, key: Option<&str>, args: &[&str]) -> String {
        let out = self.weft(key, args);
        assert!(
            out.status.success(),
            "weft {args:?} failed:\n{}",
            text(&out)
        );
        text(&out)
    }
}

/// stdout and stderr, the report's frame (`×`, `│`) and line wrapping taken out.
fn text(out: &Output) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    all.replace(['×', '│'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fails with a message (exit code not 0), without a panic.
fn refused(out: &Output) -> String {
    let all = text(out);
    assert!(!out.status.success(), "it succeeded:\n{all}");
    assert!(!all.contains("panicked"), "{all}");
    all
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
fn assert_private_files(env: &Env) {
    let dir = env.weft_dir();
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    assert_eq!(mode(&dir.join("weft.db")), 0o600, "weft.db");
    assert_eq!(mode(&dir.join("secret.key")), 0o600, "secret.key");
    for file in ["weft.db-wal", "weft.db-shm"] {
        let path = dir.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
}

#[cfg(unix)]
#[test]
fn the_database_and_key_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.ok(None, &["org", "add", "Acme"]);
    env.ok(
        None,
        &["org", "var", "set", "acme", "api_key", SECRET, "--secret"],
    );
    assert_private_files(&env);

    // While a connection writes, SQLite makes -wal and -shm with the database file's mode.
    let dir = env.weft_dir();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("weft.db"))
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .connect()
            .await
            .unwrap();
        sqlx::query("INSERT INTO settings (key, value) VALUES ('keys_files_e2e', 'x')")
            .execute(&mut conn)
            .await
            .unwrap();
        for file in ["weft.db-wal", "weft.db-shm"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file} while in use");
        }
    });

    // A database and key file left readable by others (an older weft, a copy made with the
    // default umask) are made owner-only when next opened.
    for file in ["weft.db", "secret.key"] {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let listed = env.ok(None, &["org", "list"]);
    assert!(listed.contains("Acme"), "{listed}");
    assert_private_files(&env);
}

#[test]
fn an_empty_or_garbled_key_file_stops_the_command_with_a_clear_message() {
    let env = Env::new();
    std::fs::create_dir_all(env.weft_dir()).unwrap();
    let key = env.weft_dir().join("secret.key");
    for (content, says) in [
        ("", "is empty"),
        ("  \n", "is empty"),
        ("not a key at all", "does not hold a 32-byte key"),
    ] {
        std::fs::write(&key, content).unwrap();
        let all = refused(&env.weft(None, &["org", "add", "Acme"]));
        assert!(all.contains(&key.display().to_string()), "{all}");
        assert!(all.contains(says), "{content:?}: {all}");
        assert!(all.contains("openssl rand -hex 32"), "{all}");
    }
    // A real key works, and nothing was added by the refused attempts.
    std::fs::write(&key, format!("{}\n", "5a".repeat(32))).unwrap();
    let listed = env.ok(None, &["org", "list"]);
    assert!(!listed.contains("Acme"), "{listed}");
    env.ok(None, &["org", "add", "Acme"]);
}

#[test]
fn passphrases_are_stretched_with_a_salt_kept_in_the_database() {
    let env = Env::new();
    let out = refused(&env.weft(Some("too short"), &["org", "add", "Acme"]));
    assert!(out.contains("at least 12"), "{out}");
    assert!(out.contains("openssl rand -hex 32"), "{out}");

    env.ok(Some(PASSPHRASE), &["org", "add", "Acme"]);
    env.ok(
        Some(PASSPHRASE),
        &["org", "var", "set", "acme", "pw", SECRET, "--secret"],
    );
    // Only a passphrase needs a salt; it is in the settings, 16 random bytes in hex.
    let salt = tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::{ConnectOptions, Row};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(env.weft_dir().join("weft.db"))
            .connect()
            .await
            .unwrap();
        sqlx::query("SELECT value FROM settings WHERE key = 'secret_key_salt'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get::<String, _>("value")
    });
    assert_eq!(salt.len(), 32, "{salt}");
    assert!(salt.chars().all(|c| c.is_ascii_hexdigit()), "{salt}");

    // Another process with the same passphrase opens the secret; another passphrase cannot.
    let wf = env.dir.path().join("uses-secret.yaml");
    std::fs::write(
        &wf,
        "name: uses-secret\ntasks:\n  call:\n    action: core.echo\n    input:\n      n: \"{{ ORG.VARIABLES.pw | length }}\"\noutput:\n  n: \"{{ TASKS.call.result.n }}\"\n",
    )
    .unwrap();
    let run = |key: &str| {
        env.weft(
            Some(key),
            &["run", wf.to_str().unwrap(), "--org", "acme", "--json"],
        )
    };
    let out = run(PASSPHRASE);
    assert!(out.status.success(), "{}", text(&out));
    let exec: Value = serde_json::from_slice(&out.stdout).expect("--json");
    assert_eq!(exec["output"]["n"], SECRET.len(), "{exec}");
    let out = run("another passphrase entirely");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
}

/// An archive entry: name, type, size (that many zero bytes).
type Entry = (String, tar::EntryType, u64);

/// Writes a .tar.gz of `entries`.
fn tar_gz(path: &Path, entries: impl IntoIterator<Item = Entry>) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, kind, size) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_path(&name).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        b.append(&h, std::io::repeat(0).take(size)).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

const MIB: u64 = 1024 * 1024;

#[test]
fn crate_archives_past_the_limits_are_refused() {
    let env = Env::new();
    let manifest = || ("bomb/crate.yaml".to_string(), tar::EntryType::Regular, 10);
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        (
            "one-huge-file.tar.gz",
            vec![
                manifest(),
                ("bomb/zeros.yaml".into(), tar::EntryType::Regular, 100 * MIB),
            ],
            "4 MiB limit for one file",
        ),
        (
            "many-entries.tar.gz",
            std::iter::once(manifest())
                .chain((0..5_000).map(|i| (format!("bomb/f{i}.yaml"), tar::EntryType::Regular, 1)))
                .collect(),
            "more than 1000 entries",
        ),
        (
            "large-in-total.tar.gz",
            std::iter::once(manifest())
                .chain(
                    (0..5).map(|i| (format!("bomb/f{i}.yaml"), tar::EntryType::Regular, 4 * MIB)),
                )
                .collect(),
            "unpacks to more than 16 MiB",
        ),
        // Data weft skips (not a file) still has to be decompressed: that is counted too.
        (
            "skipped-data.tar.gz",
            vec![
                manifest(),
                ("bomb/pipe".into(), tar::EntryType::Fifo, 100 * MIB),
            ],
            "decompresses to more than 32 MiB",
        ),
    ];
    for (name, entries, says) in cases {
        let archive = env.dir.path().join(name);
        tar_gz(&archive, entries);
        let size = std::fs::metadata(&archive).unwrap().len();
        assert!(size < 2 * MIB, "{name} is {size} bytes compressed");
        let all = refused(&env.weft(
            None,
            &[
                "crate",
                "install",
                archive.to_str().unwrap(),
                "--org",
                "acme",
            ],
        ));
        assert!(all.contains(says), "{name}: {all}");
        assert!(all.contains("refused"), "{name}: {all}");
    }
}
