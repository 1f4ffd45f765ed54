//! weft's main job, exactly as the README shows it: `weft serve --sim --workflows workflows/`
//! (the real binary, the bundled Autotask simulator, every example deployed), then the demo
//! chain:
//!
//! 1. an RMM alert POSTed to `/hooks/rmm-alert/acme-dental` with the printed secret runs
//!    `rmm-alert-to-ticket` (`response: wait`), which finds the company "Acme Dental" in the
//!    simulator and opens a ticket in its Monitoring Alert queue; the answer is the output;
//! 2. the simulator sends the signed ticket-created callout to the webhook that
//!    `ticket-triage`'s `autotask.ticket` trigger registered at start; `ticket-triage` fetches
//!    the ticket and moves it to Level I Support.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Every wait in this test is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

struct Server {
    child: Child,
    /// stdout lines seen so far.
    lines: Vec<String>,
    rx: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["serve", "--sim", "--workflows", "workflows/"])
            .args(["--listen", "127.0.0.1:0", "--database"])
            .arg(format!("sqlite://{}", dir.path().join("weft.db").display()))
            .env_remove("WEFT_API_TOKEN")
            .env_remove("WEFT_INTEGRATIONS")
            .env_remove("WEFT_PUBLIC_URL")
            .env_remove("WEFT_LISTEN")
            .env("WEFT_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start weft");
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Server {
            child,
            lines: Vec::new(),
            rx,
            stderr,
            _dir: dir,
        }
    }

    /// Fails the test with `msg`, what the server printed and its logs.
    fn fail(&mut self, msg: &str) -> ! {
        while let Ok(l) = self.rx.try_recv() {
            self.lines.push(l);
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            std::thread::sleep(Duration::from_millis(200));
            eprintln!("weft serve exited: {status}");
        }
        panic!(
            "{msg}\n--- weft serve stdout ---\n{}\n--- weft serve stderr ---\n{}",
            self.lines.join("\n"),
            self.stderr.lock().unwrap()
        );
    }

    /// The first stdout line (seen before or printed within [`WAIT`]) that `pred` accepts.
    fn line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.lines.iter().find(|l| pred(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    self.lines.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("no {what} line within {}s", WAIT.as_secs()))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("weft serve closed stdout before printing {what}"))
                }
            }
        }
    }
}

struct Reply {
    status: u16,
    json: Value,
    text: String,
}

/// One HTTP/1.1 request over a fresh connection (`connection: close`).
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        panic!(
            "{method} {path}: no complete answer within {}s: {e}",
            WAIT.as_secs()
        );
    }
    let out = String::from_utf8_lossy(&raw).to_string();
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, rest) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let text = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Reply {
        status,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        body.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    body
}

/// The last space-separated word of a line, without a closing parenthesis.
fn last_word(line: &str) -> String {
    line.rsplit(' ')
        .next()
        .unwrap_or_default()
        .trim_end_matches(')')
        .to_string()
}

#[test]
fn rmm_alert_opens_a_ticket_in_the_simulator_and_triage_routes_it() {
    let mut s = Server::start();

    // What `weft serve --sim --workflows workflows/` prints, as the README shows it.
    let sim_line = s.line("`Autotask simulator: …`", |l| {
        l.starts_with("Autotask simulator: ")
    });
    let sim_base = sim_line
        .trim_start_matches("Autotask simulator: ")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let addr = s
        .line("`listening on http://…`", |l| {
            l.starts_with("listening on http://")
        })
        .trim_start_matches("listening on http://")
        .to_string();
    let token = last_word(&s.line("`API token …`", |l| l.starts_with("API token")));
    let hook = s.line("`webhook rmm-alert-to-ticket.rmm-alert: …`", |l| {
        l.starts_with("webhook rmm-alert-to-ticket.rmm-alert: POST ")
    });
    assert!(token.starts_with("weft_"), "API token line: {token}");
    assert!(
        hook.contains(&format!("http://{addr}/hooks/rmm-alert/{{org}}")),
        "webhook line: {hook}"
    );
    // Each client org's sender has its own secret, printed once when it is issued.
    let own = s.line(
        "`webhook rmm-alert-to-ticket.rmm-alert for acme-dental: …`",
        |l| l.starts_with("webhook rmm-alert-to-ticket.rmm-alert for acme-dental: POST "),
    );
    let secret = own
        .split_once("x-weft-secret: ")
        .and_then(|(_, rest)| rest.split(';').next())
        .unwrap_or_default()
        .to_string();
    if !secret.starts_with("whsec_")
        || !own.contains(&format!("http://{addr}/hooks/rmm-alert/acme-dental"))
    {
        s.fail(&format!(
            "no x-weft-secret in the org's webhook line: {own}"
        ));
    }

    // ticket-triage's Autotask webhook is registered in the simulator in the background.
    let synced = s.line("autotask webhook of ticket-triage.new-ticket", |l| {
        l.starts_with("autotask webhook") && l.contains("ticket-triage.new-ticket")
    });
    if !synced.starts_with("autotask webhook created: ticket-triage.new-ticket") {
        s.fail(&format!(
            "ticket-triage's Autotask webhook was not registered: {synced}"
        ));
    }
    if let Some(bad) = s.lines.iter().find(|l| l.contains("not synced")) {
        let bad = bad.clone();
        s.fail(&format!("an Autotask webhook was not synced: {bad}"));
    }

    // 1. The RMM alert, as a user sends it with curl.
    let alert = r#"{"alert": {"device": "ACME-SRV01", "severity": "high", "source": "Datto RMM",
        "summary": "Disk C: 92% full", "details": {"volume": "C:", "free": "8%"}}}"#;
    let r = http(
        &addr,
        "POST",
        "/hooks/rmm-alert/acme-dental",
        &[
            ("x-weft-secret", &secret),
            ("content-type", "application/json"),
        ],
        alert,
    );
    if r.status != 200 {
        s.fail(&format!(
            "the RMM alert was answered {}: {}",
            r.status, r.text
        ));
    }
    let out = r.json;
    let Some(ticket_id) = out["ticket_id"].as_i64() else {
        s.fail(&format!("no ticket_id in the workflow output: {out}"));
    };
    let ticket_number = out["ticket_number"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(ticket_number.starts_with('T'), "ticket_number: {out}");
    assert_eq!(out["company"], "Acme Dental", "{out}");
    assert!(out["warning"].is_null(), "{out}");

    // 2. The simulator's ticket-created callout starts ticket-triage for that ticket.
    let auth = format!("Bearer {token}");
    let deadline = Instant::now() + WAIT;
    let triage = loop {
        let r = http(
            &addr,
            "GET",
            "/api/executions?workflow=ticket-triage",
            &[("authorization", &auth)],
            "",
        );
        if r.status != 200 {
            s.fail(&format!(
                "GET /api/executions answered {}: {}",
                r.status, r.text
            ));
        }
        let runs: Vec<Value> = r.json.as_array().cloned().unwrap_or_default();
        let mine: Vec<&Value> = runs
            .iter()
            .filter(|e| e["input"]["ticket_id"] == ticket_id)
            .collect();
        if let Some(failed) = mine
            .iter()
            .find(|e| matches!(e["status"].as_str(), Some("failed" | "cancelled")))
        {
            let failed = (*failed).clone();
            s.fail(&format!("ticket-triage did not succeed: {failed:#}"));
        }
        if let Some(done) = mine.iter().find(|e| e["status"] == "succeeded") {
            assert_eq!(mine.len(), 1, "one triage per ticket: {runs:#?}");
            break (*done).clone();
        }
        if Instant::now() > deadline {
            let events = http(
                &addr,
                "GET",
                "/api/triggers/ticket-triage/new-ticket/events",
                &[("authorization", &auth)],
                "",
            );
            s.fail(&format!(
                "no succeeded ticket-triage execution for ticket {ticket_id} within {}s\nexecutions: {}\ntrigger events: {}",
                WAIT.as_secs(),
                r.text,
                events.text
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(triage["trigger"]["type"], "autotask.ticket", "{triage:#}");
    assert_eq!(triage["trigger"]["action"], "create", "{triage:#}");
    assert_eq!(
        triage["trigger"]["fields"]["QueueID"], "29683354",
        "{triage:#}"
    );
    let o = &triage["output"];
    assert_eq!(o["ticket_id"], ticket_id, "{triage:#}");
    assert_eq!(o["ticket_number"], ticket_number.as_str(), "{triage:#}");
    assert_eq!(o["lane"], "triage", "{triage:#}");
    assert_eq!(o["queue_id"], 8, "{triage:#}");

    // The ticket really moved to Level I Support (8) in the simulator.
    let sim = sim_base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let r = http(
        &sim,
        "GET",
        &format!("/ATServicesRest/V1.0/Tickets/{ticket_id}"),
        &[
            ("UserName", "api@weft.test"),
            ("Secret", "sim-secret"),
            ("ApiIntegrationCode", "WEFTSIMINTEGRATION000000001"),
        ],
        "",
    );
    let item = &r.json["item"];
    assert_eq!(item["queueID"], 8, "{}", r.text);
    assert_eq!(item["companyID"], 174, "{}", r.text);
    assert_eq!(
        item["priority"], 1,
        "severity high → priority High: {}",
        r.text
    );
    assert_eq!(
        item["title"], "[HIGH] ACME-SRV01: Disk C: 92% full",
        "{}",
        r.text
    );
}
