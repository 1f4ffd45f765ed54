//! What the benchmarks share: the stores they compare.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_engine::store::Store;

/// A store to measure: a fresh SQLite file or a fresh PostgreSQL schema.
pub struct BenchStore {
    /// `SQLite file` or `PostgreSQL`.
    pub name: &'static str,
    pub store: Arc<dyn Store>,
    /// A URL a second connection can reach the same data with (bare-commit baselines).
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(std::path::PathBuf),
    Schema(String, String),
}

/// The PostgreSQL URL to measure against: `--postgres URL`, else `WEFT_TEST_DATABASE_URL`.
pub fn postgres_url() -> Option<String> {
    std::env::args()
        .skip_while(|a| a != "--postgres")
        .nth(1)
        .or_else(|| std::env::var("WEFT_TEST_DATABASE_URL").ok())
        .filter(|u| !u.is_empty())
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A fresh SQLite file store (WAL, synchronous=NORMAL) in a temp folder.
pub async fn sqlite() -> BenchStore {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("weft-bench-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}/weft.db", dir.display());
    let store = weft_engine::store::open(&url).await.expect("store");
    BenchStore {
        name: "SQLite file",
        store,
        url,
        cleanup: Cleanup::Dir(dir),
    }
}

/// A fresh schema on the PostgreSQL at `base`, dropped by [`BenchStore::close`].
pub async fn postgres(base: &str) -> BenchStore {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let schema = format!("weft_bench_{}_{n}", std::process::id());
    let store = weft_engine::store::PostgresStore::open_in_schema(base, &schema)
        .await
        .expect("the PostgreSQL store opens");
    let sep = if base.contains('?') { '&' } else { '?' };
    BenchStore {
        name: "PostgreSQL",
        store: Arc::new(store),
        url: format!("{base}{sep}options[search_path]={schema}"),
        cleanup: Cleanup::Schema(base.to_string(), schema),
    }
}

impl BenchStore {
    /// Removes the data.
    pub async fn close(self) {
        match self.cleanup {
            Cleanup::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Cleanup::Schema(base, schema) => {
                if let Ok(pool) = sqlx::PgPool::connect(&base).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                        .execute(&pool)
                        .await;
                }
            }
        }
    }

    /// `n` single-row commits (a 200-byte INSERT) through sqlx on the same database: the
    /// durability floor a step is compared with.
    pub async fn bare_commits(&self, n: usize) -> Vec<Duration> {
        let payload = "x".repeat(200);
        let mut times = Vec::with_capacity(n);
        if self.url.starts_with("sqlite") {
            use sqlx::sqlite::{
                SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
            };
            let options: SqliteConnectOptions = self.url.parse().expect("valid URL");
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(
                    options
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal),
                )
                .await
                .expect("opens");
            sqlx::query("CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
                .execute(&pool)
                .await
                .expect("creates");
            for _ in 0..n {
                let t = Instant::now();
                sqlx::query("INSERT INTO bench_commit (payload) VALUES (?)")
                    .bind(&payload)
                    .execute(&pool)
                    .await
                    .expect("inserts");
                times.push(t.elapsed());
            }
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&self.url)
                .await
                .expect("opens");
            sqlx::query("CREATE TABLE IF NOT EXISTS bench_commit (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)")
                .execute(&pool)
                .await
                .expect("creates");
            for _ in 0..n {
                let t = Instant::now();
                sqlx::query("INSERT INTO bench_commit (payload) VALUES ($1)")
                    .bind(&payload)
                    .execute(&pool)
                    .await
                    .expect("inserts");
                times.push(t.elapsed());
            }
        }
        times
    }
}

impl BenchStore {
    /// `n` single-row commits (the same 200-byte INSERT) through rusqlite, the lowest-overhead
    /// client (C SQLite behind a thin wrapper), on a second table of the same SQLite file: the
    /// physical floor. `None` for PostgreSQL.
    pub fn raw_commits(&self, n: usize) -> Option<Vec<Duration>> {
        let path = self.url.strip_prefix("sqlite://")?;
        let conn = rusqlite::Connection::open(path).expect("opens");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             CREATE TABLE IF NOT EXISTS bench_raw_commit (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)",
        )
        .expect("creates");
        let payload = "x".repeat(200);
        let mut insert = conn
            .prepare("INSERT INTO bench_raw_commit (payload) VALUES (?1)")
            .expect("prepares");
        Some(
            (0..n)
                .map(|_| {
                    let t = Instant::now();
                    insert.execute([&payload]).expect("inserts");
                    t.elapsed()
                })
                .collect(),
        )
    }
}

/// A comma-separated list of counts after `flag` (`--workers 1,2,4`), else `default`.
pub fn counts(flag: &str, default: &[usize]) -> Vec<usize> {
    std::env::args()
        .skip_while(|a| a != flag)
        .nth(1)
        .map(|s| {
            s.split(',')
                .map(|n| n.trim().parse().expect("a list of numbers"))
                .collect()
        })
        .unwrap_or_else(|| default.to_vec())
}
