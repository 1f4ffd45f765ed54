//! `weft lsp` driven over stdio as an editor drives it: Content-Length framed JSON-RPC,
//! `initialize`, documents opened and changed, requests at positions, `shutdown` and `exit`.
//! Every wait has a deadline, so a server that hangs fails the test instead of the build.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::wait_child;

const WAIT: Duration = Duration::from_secs(20);

/// A client of one `weft lsp` process.
struct Client {
    child: Child,
    /// `None` once closed (the editor went away).
    stdin: Option<ChildStdin>,
    incoming: mpsc::Receiver<Value>,
    /// Notifications received while waiting for something else.
    held: Vec<Value>,
    next_id: i64,
}

impl Client {
    fn start(dir: &Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .arg("lsp")
            .arg("--stdio")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("weft lsp starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut out = BufReader::new(stdout);
            while let Some(msg) = read_frame(&mut out) {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        Client {
            child,
            stdin: Some(stdin),
            incoming,
            held: Vec::new(),
            next_id: 1,
        }
    }

    fn write_raw(&mut self, body: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        write!(stdin, "Content-Length: {}\r\n\r\n", body.len()).expect("write header");
        stdin.write_all(body).expect("write body");
        stdin.flush().expect("flush");
    }

    fn send(&mut self, msg: Value) {
        self.write_raw(msg.to_string().as_bytes());
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message from the server, within the deadline.
    fn recv(&mut self) -> Value {
        self.incoming
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("weft lsp said nothing for {WAIT:?}"))
    }

    /// The response to request `id` (error or result), holding notifications for later.
    fn response(&mut self, id: i64) -> Value {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let msg = self.recv();
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                return msg;
            }
            self.held.push(msg);
        }
        panic!("no response to request {id}");
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let msg = self.response(id);
        assert!(msg.get("error").is_none(), "{method} failed: {msg}");
        msg["result"].clone()
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        let is_ours = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
        };
        if let Some(i) = self.held.iter().position(is_ours) {
            let msg = self.held.remove(i);
            return msg["params"]["diagnostics"]
                .as_array()
                .cloned()
                .unwrap_or_default();
        }
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let msg = self.recv();
            if is_ours(&msg) {
                return msg["params"]["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            }
            self.held.push(msg);
        }
        panic!("no diagnostics for {uri}");
    }

    fn open(&mut self, uri: &str, version: usize, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": version, "text": text}}),
        );
    }

    fn change(&mut self, uri: &str, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": text}],
            }),
        );
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_frame(out: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            length = v.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    out.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// The 0-based line and UTF-16 column of the first `needle` in `text` (ASCII lines here).
fn pos(text: &str, needle: &str) -> Value {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in the text"));
    let line = text[..at].matches('\n').count();
    let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": column})
}

fn labels(result: &Value) -> Vec<String> {
    let items = result.get("items").unwrap_or(result);
    items
        .as_array()
        .expect("completion items")
        .iter()
        .map(|i| i["label"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// What `weft validate --format json` reports for `files`.
fn validate(files: &[std::path::PathBuf]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["validate", "--format", "json"])
        .args(files)
        .output()
        .expect("weft validate");
    serde_json::from_slice(&out.stdout).expect("json diagnostics")
}

const BROKEN: &str = "name: lsp-e2e
tasks:
  fetch:
    action: core.echo
    input: { message: hi }
    next:
      - do: notfy
  notify:
    action: core.noop
";

#[test]
fn an_editor_session_from_initialize_to_exit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("flow.yaml");
    std::fs::write(&file, BROKEN).expect("write");
    let uri = url::Url::from_file_path(&file).expect("uri").to_string();

    // What `weft validate` says about the file is what the editor must show.
    let expected = validate(std::slice::from_ref(&file));
    assert_eq!(expected.len(), 1, "{expected:?}");

    let mut client = Client::start(dir.path());
    let init = client.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    assert_eq!(
        init["capabilities"]["textDocumentSync"], 1,
        "full sync: {init}"
    );
    client.notify("initialized", json!({}));

    // A malformed message costs that message, not the connection; a request without a
    // method still gets its answer.
    client.write_raw(b"{oops");
    client.send(json!({"jsonrpc": "2.0", "id": 99}));
    let invalid = client.response(99);
    assert_eq!(invalid["error"]["code"], -32600, "{invalid}");

    client.open(&uri, 1, BROKEN);
    let diags = client.diagnostics(&uri);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let (d, want) = (&diags[0], &expected[0]);
    assert_eq!(d["code"], want["code"]);
    assert_eq!(d["message"], want["message"]);
    assert_eq!(d["severity"], 1);
    assert_eq!(
        d["range"]["start"]["line"],
        want["line"].as_u64().unwrap() - 1
    );
    assert_eq!(
        d["range"]["start"]["character"],
        want["column"].as_u64().unwrap() - 1
    );
    assert_eq!(
        d["range"]["end"]["character"],
        pos(BROKEN, "notfy")["character"].as_u64().unwrap() + 5
    );

    let fixed = BROKEN.replace("notfy", "notify");
    client.change(&uri, 2, &fixed);
    assert_eq!(client.diagnostics(&uri), Vec::<Value>::new(), "fixed");

    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": pos(&fixed, "core.echo")}),
    );
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(
        text.contains("core.echo") && text.contains("Returns its input"),
        "{text}"
    );

    let target = pos(&fixed, "do: notify");
    let target =
        json!({"line": target["line"], "character": target["character"].as_u64().unwrap() + 5});
    let def = client.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": uri}, "position": target}),
    );
    assert_eq!(def["uri"], uri.as_str(), "{def}");
    assert_eq!(def["range"]["start"], pos(&fixed, "notify:\n"), "{def}");

    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    let tasks = symbols
        .as_array()
        .expect("symbols")
        .iter()
        .find(|s| s["name"] == "tasks")
        .expect("a tasks symbol");
    let names: Vec<&str> = tasks["children"]
        .as_array()
        .expect("children")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["fetch", "notify"]);

    // Completion while typing: the document is mid-edit.
    let typing = fixed.replace("action: core.noop", "action: autotask.");
    client.change(&uri, 3, &typing);
    let at = pos(&typing, "autotask.");
    let at = json!({"line": at["line"], "character": at["character"].as_u64().unwrap() + 9});
    let items = labels(&client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": at}),
    ));
    assert!(
        items.iter().any(|l| l == "autotask.create_ticket"),
        "{items:?}"
    );
    assert!(
        items.iter().all(|l| l.starts_with("autotask.")),
        "{items:?}"
    );

    let typing = fixed.replace(
        "action: core.noop\n",
        "action: core.fail\n    input:\n      \n",
    );
    client.change(&uri, 4, &typing);
    let at = pos(&typing, "      \n");
    let at = json!({"line": at["line"], "character": 6});
    let items = labels(&client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": at}),
    ));
    assert_eq!(items, ["message"]);

    // Positions past the end and unknown documents are answered, not fatal.
    let far = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": 9999, "character": 9999}}),
    );
    assert!(far.is_null());
    let unknown = client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": "file:///nowhere.yaml"}, "position": {"line": 0, "character": 0}}),
    );
    assert!(unknown.is_null());

    client.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": uri}}),
    );
    assert_eq!(
        client.diagnostics(&uri),
        Vec::<Value>::new(),
        "cleared on close"
    );

    assert!(client.request("shutdown", Value::Null).is_null());
    client.notify("exit", Value::Null);
    let status = wait_child(&mut client.child, WAIT).expect("weft lsp exits after `exit`");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn exit_without_shutdown_and_a_closed_stdin_end_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut client = Client::start(dir.path());
    client.request("initialize", json!({"capabilities": {}}));
    client.notify("exit", Value::Null);
    let status = wait_child(&mut client.child, WAIT).expect("exits");
    assert_eq!(
        status.code(),
        Some(1),
        "exit before shutdown is an error exit"
    );

    let mut client = Client::start(dir.path());
    client.request("initialize", json!({"capabilities": {}}));
    drop(client.stdin.take());
    let status = wait_child(&mut client.child, WAIT).expect("exits when the editor goes away");
    assert_eq!(status.code(), Some(1));
}

/// Every file of the diagnostics corpus: the server's diagnostics are `weft validate`'s, one
/// for one, in order (columns converted from characters to UTF-16 units).
#[test]
fn every_corpus_file_gets_the_diagnostics_weft_validate_reports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = ["tests/corpus/invalid", "tests/corpus/warnings", "workflows"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).expect("corpus dir"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() > 20, "the corpus is there");
    let expected = validate(&files);

    let mut client = Client::start(root);
    client.request("initialize", json!({"capabilities": {}}));
    client.notify("initialized", json!({}));
    for (n, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).expect("read");
        // Nothing but comments is no kind of weft file yet: an editor opening any such YAML
        // must not be told "the file is empty".
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.starts_with('#'))
        {
            continue;
        }
        let uri = url::Url::from_file_path(file).expect("uri").to_string();
        client.open(&uri, n, &text);
        let got = client.diagnostics(&uri);
        let want: Vec<&Value> = expected
            .iter()
            .filter(|d| Path::new(d["file"].as_str().unwrap_or_default()) == file)
            .collect();
        let got: Vec<(String, String, u64, u64)> = got
            .iter()
            .map(|d| {
                (
                    d["code"].as_str().unwrap_or_default().to_string(),
                    d["message"].as_str().unwrap_or_default().to_string(),
                    d["range"]["start"]["line"].as_u64().unwrap_or_default(),
                    d["range"]["start"]["character"]
                        .as_u64()
                        .unwrap_or_default(),
                )
            })
            .collect();
        let want: Vec<(String, String, u64, u64)> = want
            .iter()
            .map(|d| {
                let line = d["line"].as_u64().unwrap_or_default().saturating_sub(1);
                let column = d["column"].as_u64().unwrap_or(1).saturating_sub(1);
                let text_line = text.lines().nth(line as usize).unwrap_or_default();
                let units: usize = text_line
                    .chars()
                    .take(column as usize)
                    .map(char::len_utf16)
                    .sum();
                (
                    d["code"].as_str().unwrap_or_default().to_string(),
                    d["message"].as_str().unwrap_or_default().to_string(),
                    line,
                    units as u64,
                )
            })
            .collect();
        assert_eq!(got, want, "{}", file.display());
        client.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri}}),
        );
        assert!(client.diagnostics(&uri).is_empty());
    }
}

#[test]
fn a_sub_workflow_call_leads_to_the_child_workflow_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flows = dir.path().join("workflows");
    std::fs::create_dir_all(&flows).expect("mkdir");
    let child = "name: notify-child\ntasks:\n  a:\n    action: core.noop\n";
    std::fs::write(flows.join("child.yaml"), child).expect("write");
    let parent = "name: parent\ntasks:\n  call:\n    action: core.workflow\n    input:\n      workflow: notify-child\n";
    let file = flows.join("parent.yaml");
    std::fs::write(&file, parent).expect("write");
    let uri = url::Url::from_file_path(&file).expect("uri").to_string();

    let mut client = Client::start(dir.path());
    client.request("initialize", json!({"capabilities": {}}));
    client.open(&uri, 1, parent);
    let def = client.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": uri}, "position": pos(parent, "notify-child")}),
    );
    let child_uri = url::Url::from_file_path(flows.join("child.yaml")).expect("uri");
    assert_eq!(def["uri"], child_uri.as_str(), "{def}");
    assert_eq!(def["range"]["start"], json!({"line": 0, "character": 6}));
}

/// A workflow test file gets `weft test`'s own checks as the author types.
#[test]
fn a_test_file_gets_the_checks_weft_test_makes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut client = Client::start(dir.path());
    client.request("initialize", json!({"capabilities": {}}));
    client.notify("initialized", json!({}));
    let uri = format!("file://{}/triage.test.yaml", dir.path().display());
    client.open(
        &uri,
        1,
        "cases:\n  - name: a\n    expcet: {status: succeeded}\n",
    );
    let diags = client.diagnostics(&uri);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0]["code"], "test.unknown_key");
    assert_eq!(
        diags[0]["range"]["start"],
        json!({"line": 2, "character": 4})
    );
    client.change(
        &uri,
        2,
        "cases:\n  - name: a\n    expect: {status: succeeded}\n",
    );
    assert_eq!(client.diagnostics(&uri), Vec::<Value>::new());
    // Under `mocks:`, the tested workflow's tasks (read from triage.yaml beside it) and the
    // actions; under `expect:`, its keys and the statuses.
    std::fs::write(
        dir.path().join("triage.yaml"),
        "name: triage\ntasks:\n  fetch:\n    action: autotask.get_ticket\n    input: {id: 1}\n    next: [post]\n  post:\n    action: core.noop\n",
    )
    .unwrap();
    let typing = "cases:\n  - name: a\n    mocks:\n      f\n    expect:\n      status: \n";
    client.change(&uri, 3, typing);
    let at = pos(typing, "      f\n");
    let at = json!({"line": at["line"], "character": 7});
    let items = labels(&client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": at}),
    ));
    assert!(items.iter().any(|l| l == "fetch"), "{items:?}");
    assert!(items.iter().any(|l| l == "post"), "{items:?}");
    assert!(
        items.iter().any(|l| l == "autotask.get_ticket"),
        "{items:?}"
    );
    let at = pos(typing, "status: ");
    let at = json!({"line": at["line"], "character": at["character"].as_u64().unwrap() + 8});
    let items = labels(&client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": at}),
    ));
    assert!(items.iter().any(|l| l == "filtered"), "{items:?}");
}
