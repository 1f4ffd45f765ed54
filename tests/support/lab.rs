//! The crate lab: a temp database with the MSP and `acme-dental` (mapped to company 174),
//! the in-process simulator as the `autotask`, `openai`, `teams` (channel `oncall`) and
//! `slack` (channel `desk`) integrations, and helpers to install and run library crates.

use std::process::Output;

use serde_json::{Value, json};
use weft_sim::{DEFAULT_OPENAI_KEY, RunningSim, SimConfig, Simulator};

use super::Env;

/// A client org in a database wired to the simulator, for crate tests.
pub struct Lab {
    pub env: Env,
    pub sim: RunningSim,
    pub integrations: String,
}

/// A database with the MSP, `acme-dental` below it mapped to company 174, and the simulator
/// as the `autotask`, `openai`, `teams` (channel `oncall`) and `slack` (channel `desk`)
/// integrations.
pub async fn lab() -> Lab {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let env = Env::new();
    let creds = SimConfig::default();
    let path = env.dir.path().join("integrations.yaml");
    std::fs::write(
        &path,
        format!(
            "integrations:\n  - kind: autotask\n    settings:\n      username: {}\n      integration_code: {}\n      discovery_url: {}\n    secrets:\n      secret: {}\n  - kind: openai\n    settings:\n      base_url: {}\n      model: gpt-4o-mini\n    secrets:\n      api_key: {}\n  - kind: teams\n    settings:\n      url: {}\n  - kind: slack\n    settings:\n      url: {}\n",
            creds.username,
            creds.integration_code,
            sim.base_url,
            creds.secret,
            sim.openai_base_url(),
            DEFAULT_OPENAI_KEY,
            sim.teams_url("oncall"),
            sim.slack_url("desk"),
        ),
    )
    .unwrap();
    let lab = Lab {
        env,
        sim,
        integrations: path.display().to_string(),
    };
    ok(&lab.weft(&["org", "add", "BrightPath IT"]).await);
    ok(&lab
        .weft(&["org", "add", "Acme Dental", "--parent", "brightpath-it"])
        .await);
    ok(&lab.weft(&["mapping", "set", "acme-dental", "174"]).await);
    lab
}

impl Lab {
    /// A local SMTP sink, set up as the MSP's `email` integration (the client inherits it).
    pub async fn email_sink(&self) -> weft_sim::SmtpSink {
        let smtp = weft_sim::SmtpSink::start().await.unwrap();
        let port = format!("port={}", smtp.port());
        ok(&self
            .weft(&[
                "integration",
                "add",
                "email",
                "--org",
                "brightpath-it",
                "--set",
                "host=127.0.0.1",
                "--set",
                &port,
                "--set",
                "security=none",
                "--set",
                "from=accounts@brightpath.example",
            ])
            .await);
        smtp
    }

    pub async fn weft(&self, args: &[&str]) -> Output {
        let mut cmd = self.env.cmd(args);
        cmd.arg("--integrations").arg(&self.integrations);
        tokio::task::spawn_blocking(move || cmd.output().expect("weft runs"))
            .await
            .unwrap()
    }

    /// Installs a library crate for acme-dental with `params` (and other flags).
    pub async fn install(&self, name: &str, params: &[&str]) -> String {
        let mut args = vec!["crate", "install", name, "--org", "acme-dental"];
        for p in params {
            if p.starts_with("--") {
                args.push(p);
            } else {
                args.push("--param");
                args.push(p);
            }
        }
        let out = ok(&self.weft(&args).await);
        assert!(out.contains(&format!("{name}--acme-dental")), "{out}");
        out
    }

    /// Runs the installed workflow with JSON inputs; the printed execution.
    pub async fn run(&self, workflow: &str, input: Value) -> Value {
        let input = input.to_string();
        let out = self
            .weft(&[
                "run",
                workflow,
                "--org",
                "acme-dental",
                "--input-json",
                &input,
                "--json",
            ])
            .await;
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// A new ticket of Acme Dental (company 174), as a customer would open it.
    pub fn ticket(&self, title: &str, description: &str, priority: i64) -> i64 {
        let n = self.sim.simulator.records("Tickets").len();
        self.sim.simulator.insert(
            "Tickets",
            json!({"ticketNumber": format!("T20261123.{:04}", 9000 + n), "title": title,
                "description": description, "companyID": 174, "priority": priority,
                "status": 1, "queueID": 8, "issueType": null, "subIssueType": null}),
        )
    }

    pub fn record(&self, entity: &str, id: i64) -> Value {
        self.sim
            .simulator
            .records(entity)
            .into_iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no {entity} {id} in the simulator"))
    }

    /// Moves contract `id`'s end to midnight UTC `days` from the real today: the simulator's
    /// seeded dates age, and the contract crates compare them with the clock.
    pub fn contract_ending_in(&self, id: i64, days: i64) {
        let end = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .checked_add(jiff::Span::new().days(days))
            .expect("a date in range");
        let mut contract = self.record("Contracts", id);
        contract["endDate"] = json!(format!("{end}T00:00:00Z"));
        self.sim.simulator.insert("Contracts", contract);
    }

    pub fn notes_titled(&self, ticket: i64, title: &str) -> Vec<Value> {
        self.sim
            .simulator
            .records("TicketNotes")
            .into_iter()
            .filter(|n| n["ticketID"] == ticket && n["title"] == title)
            .collect()
    }

    /// The notes of a ticket.
    pub fn notes_of(&self, ticket: i64) -> Vec<Value> {
        self.sim
            .simulator
            .records("TicketNotes")
            .into_iter()
            .filter(|n| n["ticketID"] == ticket)
            .collect()
    }

    /// The sinks' messages of `kind` (`teams`, `slack`) as JSON text.
    pub fn messages(&self, kind: &str) -> Vec<String> {
        self.sim
            .simulator
            .sink_messages()
            .into_iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.body.to_string())
            .collect()
    }
}

pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn succeeded(exec: &Value) {
    assert_eq!(exec["status"], "succeeded", "{exec:#}");
}

/// The API token [`Lab::serve`] gives `weft serve`.
pub const API_TOKEN: &str = "crate-lab-token";

/// `weft serve` over a lab's database and integrations on a free port, killed when dropped.
pub struct Server {
    _child: super::Bg,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Lab {
    /// Starts `weft serve` (API token [`API_TOKEN`], webhook secrets issued per trigger and org)
    /// and waits until it listens.
    pub fn serve(&self) -> Server {
        use std::io::BufRead;
        let mut cmd = self.env.cmd(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.arg("--integrations")
            .arg(&self.integrations)
            .env("WEFT_API_TOKEN", API_TOKEN)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = super::Bg(cmd.spawn().expect("weft serve starts"));
        let stdout = child.0.stdout.take().expect("piped");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = lines.clone();
        std::thread::spawn(move || {
            // Reads to the end so the server never blocks on a full pipe.
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.strip_prefix("listening on ") {
                    let _ = tx.send(a.trim().to_string());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let url = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("weft serve prints its address");
        Server {
            _child: child,
            url,
            lines,
        }
    }
}

impl Server {
    /// Lets crates that call weft's own API (bulk-create, the nightly sync) reach this server:
    /// the MSP's secret `weft_api_token` variable holds the token; answers the `weft_url=…`
    /// parameter to install them with.
    pub async fn grant_crates(&self, lab: &Lab) -> String {
        ok(&lab
            .weft(&[
                "org",
                "var",
                "set",
                "brightpath-it",
                "weft_api_token",
                API_TOKEN,
                "--secret",
            ])
            .await);
        format!("weft_url={}", self.url)
    }

    /// The secret `weft serve` printed for a webhook trigger (waits for the line).
    pub async fn webhook_secret(&self, trigger: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let lines = self.lines.lock().unwrap().clone();
            let found = lines
                .iter()
                .filter(|l| l.starts_with("webhook ") && l.contains(&format!("/hooks/{trigger}/")))
                .find_map(|l| l.split("x-weft-secret: ").nth(1))
                .and_then(|s| s.split(';').next())
                .map(|s| s.trim().to_string());
            if let Some(s) = found {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no secret printed for {trigger}: {lines:#?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// An API or hook request with the API token; the status and the JSON answer.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = reqwest::Client::new();
        let mut req = client
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(API_TOKEN);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("weft serve answers");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Waits until an execution is final; returns it.
    pub async fn finished(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (_, exec) = self
                .call("GET", &format!("/api/executions/{id}"), &[], None)
                .await;
            if matches!(
                exec["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            ) {
                return exec;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "execution {id} never finished: {exec:#}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The executions of a workflow, newest first.
    pub async fn executions(&self, workflow: &str) -> Vec<Value> {
        let (_, list) = self
            .call(
                "GET",
                &format!("/api/executions?workflow={workflow}"),
                &[],
                None,
            )
            .await;
        list.as_array()
            .cloned()
            .unwrap_or_else(|| panic!("GET /api/executions: {list}"))
    }
}

/// Creates a record through the simulator's REST API, as a technician or the customer portal
/// would (the simulator then sends its active webhooks' callouts); answers its id.
pub async fn create_via_api(sim: &RunningSim, entity: &str, fields: Value) -> i64 {
    let (user, secret, code) = sim.simulator.credentials();
    let created: Value = reqwest::Client::new()
        .post(format!("{}V1.0/{entity}", sim.base_url))
        .header("ApiIntegrationCode", code)
        .header("UserName", user)
        .header("Secret", secret)
        .json(&fields)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["itemId"]
        .as_i64()
        .unwrap_or_else(|| panic!("{entity} not created: {created}"))
}

/// Polls `check` every 100 ms until it is true; panics with `what` after `secs` seconds.
pub async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
