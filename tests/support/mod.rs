//! Shared helpers for the end-to-end tests of the executor: a temp dir with its own SQLite
//! database, running the real `weft` binary, reading timestamps, and a local HTTP server
//! that records every request and answers as each test scripts it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod lab;

/// A test's private folder and database.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: String,
}

impl Env {
    /// A temp dir whose database is already created (so that tests polling it from another
    /// process while a run starts do not race the first migration).
    pub fn new() -> Env {
        let env = Env::fresh();
        let out = env.weft(&["executions", "list"]);
        assert!(
            out.status.success(),
            "cannot create the database: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env
    }

    /// A temp dir with no database yet.
    pub fn fresh() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = format!("sqlite://{}/weft.db", dir.path().display());
        Env { dir, db }
    }

    /// Writes a workflow file into the temp dir; returns its absolute path.
    pub fn write(&self, name: &str, yaml: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, yaml).expect("write workflow");
        p
    }

    /// `weft ARGS --database DB`, run in the temp dir.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_weft"));
        c.current_dir(self.dir.path())
            .args(args)
            .arg("--database")
            .arg(&self.db)
            .env_remove("WEFT_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        c
    }

    /// `weft ARGS` without `--database` (for commands that do not use the store).
    pub fn weft_no_db(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .current_dir(self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run weft {args:?}: {e}"))
    }

    pub fn weft(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run weft {args:?}: {e}"))
    }

    /// `weft run FILE --json ARGS`: the exit code and the printed execution.
    pub fn run(&self, file: &str, args: &[&str]) -> Run {
        let mut all = vec!["run", file, "--json"];
        all.extend_from_slice(args);
        let started = Instant::now();
        let out = self.weft(&all);
        let wall = started.elapsed();
        Run::from_output(out, wall)
    }

    /// `weft executions show ID --json` (with `task_runs`).
    pub fn show(&self, id: &str) -> Value {
        let out = self.weft(&["executions", "show", id, "--json"]);
        assert!(
            out.status.success(),
            "show {id} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "show printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `weft executions list --json [--status S]`.
    pub fn list(&self, status: Option<&str>) -> Vec<Value> {
        let mut args = vec!["executions", "list", "--json"];
        if let Some(s) = status {
            args.extend(["--status", s]);
        }
        let out = self.weft(&args);
        assert!(
            out.status.success(),
            "list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap_or_else(|e| {
                panic!(
                    "list printed no JSON ({e}): {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            })
            .as_array()
            .cloned()
            .expect("a list")
    }

    /// Starts `weft run FILE --json ARGS` in the background.
    pub fn spawn_run(&self, file: &str, args: &[&str]) -> Bg {
        let mut all = vec!["run", file, "--json"];
        all.extend_from_slice(args);
        Bg(self
            .cmd(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weft run"))
    }

    /// Polls until exactly one execution is running; returns its id.
    pub fn wait_running_execution(&self, timeout: Duration) -> String {
        let mut last = Vec::new();
        let found = wait_until(timeout, || {
            last = self.list(Some("running"));
            last.len() == 1
        });
        assert!(found, "no running execution appeared: {last:?}");
        last[0]["id"].as_str().expect("id").to_string()
    }
}

/// A background process, killed if the test ends (or panics) while it still runs.
pub struct Bg(pub Child);

impl std::ops::Deref for Bg {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Bg {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What `weft run --json` (or `rerun --json`) printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub json: Value,
    pub stdout: String,
    pub stderr: String,
    pub wall: Duration,
}

impl Run {
    pub fn from_output(out: Output, wall: Duration) -> Run {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        Run {
            code: out.status.code().unwrap_or(-1),
            json,
            stdout,
            stderr,
            wall,
        }
    }

    pub fn id(&self) -> &str {
        self.json["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no execution id in {self}"))
    }

    pub fn status(&self) -> &str {
        self.json["status"].as_str().unwrap_or("<none>")
    }

    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }

    /// The task entry named `name` in `tasks`.
    pub fn task(&self, name: &str) -> &Value {
        task(&self.json, name).unwrap_or_else(|| panic!("no task `{name}` in {self}"))
    }

    pub fn has_task(&self, name: &str) -> bool {
        task(&self.json, name).is_some()
    }

    pub fn task_status(&self, name: &str) -> Option<&str> {
        task(&self.json, name).and_then(|t| t["status"].as_str())
    }

    /// Asserts the exit code and execution status.
    pub fn expect(&self, code: i32, status: &str) -> &Self {
        assert_eq!(self.code, code, "exit code; {self}");
        assert_eq!(self.status(), status, "status; {self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.wall, self.stdout, self.stderr
        )
    }
}

pub fn task<'a>(exec: &'a Value, name: &str) -> Option<&'a Value> {
    exec["tasks"].as_array()?.iter().find(|t| t["name"] == name)
}

/// The rows of `task_runs` (from `executions show --json`) for `task`, items included.
pub fn runs_of<'a>(show: &'a Value, task: &str) -> Vec<&'a Value> {
    show["task_runs"]
        .as_array()
        .expect("task_runs")
        .iter()
        .filter(|r| r["task"] == task)
        .collect()
}

/// An RFC 3339 timestamp from the store, as milliseconds (fractional) since the epoch.
pub fn ms(v: &Value) -> f64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    let t: jiff::Timestamp = s
        .parse()
        .unwrap_or_else(|e| panic!("bad timestamp {s}: {e}"));
    t.as_nanosecond() as f64 / 1e6
}

/// The largest number of intervals `[start, end)` open at once.
pub fn max_overlap(intervals: &[(f64, f64)]) -> usize {
    let mut events: Vec<(f64, i32)> = Vec::new();
    for &(s, e) in intervals {
        events.push((s, 1));
        events.push((e, -1));
    }
    // Ends before starts at the same instant: touching intervals do not overlap.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut max) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        max = max.max(now);
    }
    max as usize
}

/// Polls `f` every 25ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits for a child process to exit, at most `timeout`; kills it if it does not.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// A local HTTP server

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

/// The server's answer to one request.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            body,
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

/// Decides the reply from the request and how many times its path was hit (this one included).
pub type Script = dyn Fn(&Hit, usize) -> Reply + Send + Sync;

struct ServerState {
    hits: Mutex<Vec<Hit>>,
    script: Box<Script>,
}

/// An HTTP server on 127.0.0.1:<random> that runs until the test process ends.
pub struct Server {
    pub base: String,
    state: Arc<ServerState>,
}

impl Server {
    /// Answers every request with `{"method", "path", "query", "body", "n"}` (200).
    pub fn echo() -> Server {
        Server::start(|hit, n| Reply::ok(echo_body(hit, n)))
    }

    pub fn start(script: impl Fn(&Hit, usize) -> Reply + Send + Sync + 'static) -> Server {
        let state = Arc::new(ServerState {
            hits: Mutex::new(Vec::new()),
            script: Box::new(script),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(handle).with_state(st);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        Server {
            base: format!("http://{addr}"),
            state,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// How many requests `path` received.
    pub fn count(&self, path: &str) -> usize {
        self.state
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .count()
    }

    /// Hits per path.
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for h in self.state.hits.lock().unwrap().iter() {
            *m.entry(h.path.clone()).or_insert(0) += 1;
        }
        m
    }
}

pub fn echo_body(hit: &Hit, n: usize) -> Value {
    json!({
        "method": hit.method,
        "path": hit.path,
        "query": hit.query,
        "body": hit.body,
        "n": n,
    })
}

async fn handle(
    axum::extract::State(st): axum::extract::State<Arc<ServerState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let hit = Hit {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body,
    };
    let reply = {
        let mut hits = st.hits.lock().unwrap();
        hits.push(hit.clone());
        let n = hits.iter().filter(|h| h.path == hit.path).count();
        (st.script)(&hit, n)
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    (
        axum::http::StatusCode::from_u16(reply.status).expect("status"),
        axum::Json(reply.body),
    )
}

/// A PostgreSQL schema of a test's own on `WEFT_TEST_DATABASE_URL`, migrated: the URL that
/// selects it (for `weft --database`) and a store on it. `None` (saying so) without the URL.
pub async fn pg_schema() -> Option<(String, std::sync::Arc<dyn weft_engine::store::Store>)> {
    let Some(base) = std::env::var("WEFT_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        weft_engine::testing::skip_for_missing_service("skipped: WEFT_TEST_DATABASE_URL not set");
        return None;
    };
    let schema = format!(
        "weft_c_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let store = weft_engine::store::PostgresStore::open_in_schema(&base, &schema)
        .await
        .expect("the test database opens");
    let sep = if base.contains('?') { '&' } else { '?' };
    Some((
        format!("{base}{sep}options[search_path]={schema}"),
        std::sync::Arc::new(store),
    ))
}
