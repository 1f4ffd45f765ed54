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
            let pool = self.pg_commits(1).await;
            for _ in 0..n {
                let t = Instant::now();
                pg_commit(&pool, &payload).await;
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
        let conn = self.rusqlite_with(
            "CREATE TABLE IF NOT EXISTS bench_raw_commit (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)",
        )?;
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

impl BenchStore {
    /// Commits per second from `clients` connections, each committing single-row INSERTs (the
    /// bare commit) for `for_how_long`: how far the database's own commits scale with
    /// concurrent writers on this machine, the ceiling of what more workers can gain.
    pub async fn concurrent_commits(&self, clients: usize, for_how_long: Duration) -> f64 {
        let pool = self.pg_commits(clients).await;
        let payload = Arc::new("x".repeat(200));
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (pool, payload) = (pool.clone(), payload.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while started.elapsed() < for_how_long {
                        pg_commit(&pool, &payload).await;
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.expect("commits");
        }
        total as f64 / started.elapsed().as_secs_f64()
    }

    /// `n` commits of what a step writes, through rusqlite on a table shaped as `task_runs`:
    /// the finished task's row brought up to date and the next task's running row inserted, in
    /// one transaction (statements prepared once). What a step costs with nothing of weft
    /// around it. `None` for PostgreSQL.
    pub fn raw_step_commits(&self, n: usize) -> Option<Vec<Duration>> {
        let conn = self.rusqlite_with(
            "CREATE TABLE IF NOT EXISTS bench_raw_step (execution_id TEXT NOT NULL, task TEXT NOT NULL, \
               status TEXT NOT NULL, seq INTEGER, input TEXT, result TEXT, routes TEXT, publish TEXT, \
               started_at TEXT, finished_at TEXT, PRIMARY KEY (execution_id, task)) WITHOUT ROWID",
        )?;
        let now = "2026-12-06T22:27:35.858230076Z";
        let mut times = Vec::with_capacity(n);
        let mut execution = String::new();
        for i in 0..n {
            // A new execution every 300 steps, as the long chain makes them.
            if i % 300 == 0 {
                execution = format!("{:08x}-0000-4000-8000-{:012x}", rand_u32(i), i);
            }
            // Made before the clock starts: weft's rows are made before its commit too.
            let (task, next) = (format!("s{}", i % 300), format!("s{}", i % 300 + 1));
            let publish = format!("[[\"i\",{i}],[\"label\",\"step {i} of 300\"]]");
            let t = Instant::now();
            conn.prepare_cached("BEGIN IMMEDIATE")
                .and_then(|mut s| s.execute([]))
                .expect("begins");
            conn.prepare_cached(
                "INSERT INTO bench_raw_step (execution_id, task, status, seq, input, result, routes, publish, started_at, finished_at) \
                 VALUES (?1, ?2, 'succeeded', ?3, '{}', 'null', '[0]', ?4, ?5, ?5) \
                 ON CONFLICT (execution_id, task) DO UPDATE SET status = excluded.status, seq = excluded.seq, \
                 input = excluded.input, result = excluded.result, routes = excluded.routes, \
                 publish = excluded.publish, finished_at = excluded.finished_at",
            )
            .and_then(|mut s| {
                s.execute(rusqlite::params![
                    execution,
                    task,
                    i as i64,
                    publish,
                    now
                ])
            })
            .expect("updates");
            conn.prepare_cached(
                "INSERT INTO bench_raw_step (execution_id, task, status, started_at) VALUES (?1, ?2, 'running', ?3)",
            )
            .and_then(|mut s| s.execute(rusqlite::params![execution, next, now]))
            .expect("inserts");
            conn.prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]))
                .expect("commits");
            times.push(t.elapsed());
        }
        Some(times)
    }
}

impl BenchStore {
    /// A rusqlite connection to the SQLite file (WAL, `synchronous=NORMAL`, as weft's writer)
    /// with `ddl` run; `None` for PostgreSQL.
    fn rusqlite_with(&self, ddl: &str) -> Option<rusqlite::Connection> {
        let path = self.url.strip_prefix("sqlite://")?;
        let conn = rusqlite::Connection::open(path).expect("opens");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; {ddl}"
        ))
        .expect("creates");
        Some(conn)
    }

    /// A pool of `connections` on the PostgreSQL database, with the bare-commit table.
    async fn pg_commits(&self, connections: usize) -> sqlx::PgPool {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(u32::try_from(connections).unwrap_or(u32::MAX))
            .connect(&self.url)
            .await
            .expect("opens");
        sqlx::query("CREATE TABLE IF NOT EXISTS bench_commit (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)")
            .execute(&pool)
            .await
            .expect("creates");
        pool
    }
}

/// One bare commit on PostgreSQL: a single-row INSERT of `payload`.
async fn pg_commit(pool: &sqlx::PgPool, payload: &str) {
    sqlx::query("INSERT INTO bench_commit (payload) VALUES ($1)")
        .bind(payload)
        .execute(pool)
        .await
        .expect("inserts");
}

/// A spread of execution ids without a random-number crate.
fn rand_u32(seed: usize) -> u32 {
    (seed as u32).wrapping_mul(2_654_435_761).rotate_left(13)
}
