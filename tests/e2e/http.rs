//! End-to-end tests of `http.request` inside workflows, against a local test server.

use crate::support::{Env, Reply, Server};
use serde_json::json;

#[test]
fn http_request_get_post_and_error_status() {
    let server = Server::start(|hit, n| match hit.path.as_str() {
        "/missing" => Reply::status(404, json!({"error": "no such ticket"})),
        _ => Reply::ok(json!({
            "method": hit.method,
            "query": hit.query,
            "body": hit.body,
            "header": hit.headers.get("x-test"),
            "content_type": hit.headers.get("content-type"),
            "n": n,
        })),
    });
    let env = Env::new();
    let wf = env.write(
        "http.yaml",
        &format!(
            r#"
name: http
input:
  ticket: {{ type: integer, default: 7 }}
tasks:
  get:
    action: http.request
    input:
      url: "{base}/tickets"
      query: {{ id: "{{{{ CTX.ticket }}}}", tags: [a, b], skip: null }}
      headers: {{ X-Test: yes-please }}
    next:
      - publish: {{ got: "{{{{ RESULT.json }}}}", get_status: "{{{{ RESULT.status }}}}" }}
        do: post
  post:
    action: http.request
    input:
      method: POST
      url: "{base}/tickets"
      json: {{ title: "ticket {{{{ CTX.ticket }}}}", nested: {{ list: [1, 2] }} }}
    next: [lookup]
  lookup:
    action: http.request
    input: {{ url: "{base}/missing" }}
    next:
      - on: failure
        publish: {{ failed_status: "{{{{ RESULT.data.status }}}}", failed_body: "{{{{ RESULT.data.json }}}}", failed_message: "{{{{ RESULT.message }}}}" }}
        do: handled
  handled: {{ action: core.noop }}
output:
  get: "{{{{ CTX.got }}}}"
  get_status: "{{{{ CTX.get_status }}}}"
  post: "{{{{ TASKS.post.result }}}}"
  failed_status: "{{{{ CTX.failed_status }}}}"
  failed_body: "{{{{ CTX.failed_body }}}}"
  failed_message: "{{{{ CTX.failed_message }}}}"
"#,
            base = server.base
        ),
    );
    let r = env.run(&wf.display().to_string(), &[]);
    r.expect(0, "succeeded");
    let out = &r.json["output"];

    assert_eq!(out["get_status"], 200, "{r}");
    assert_eq!(out["get"]["method"], "GET", "{r}");
    assert_eq!(out["get"]["query"], "id=7&tags=a&tags=b", "{r}");
    assert_eq!(out["get"]["header"], "yes-please", "{r}");

    assert_eq!(out["post"]["status"], 200, "{r}");
    assert_eq!(out["post"]["json"]["method"], "POST", "{r}");
    assert_eq!(
        out["post"]["json"]["body"],
        json!({"title": "ticket 7", "nested": {"list": [1, 2]}}),
        "{r}"
    );
    assert!(
        out["post"]["json"]["content_type"]
            .as_str()
            .is_some_and(|c| c.starts_with("application/json")),
        "{r}"
    );
    assert!(
        out["post"]["headers"]["content-type"]
            .as_str()
            .is_some_and(|c| c.contains("json")),
        "response headers are in the result; {r}"
    );

    assert_eq!(r.task_status("lookup"), Some("failed"), "{r}");
    assert_eq!(r.task_status("handled"), Some("succeeded"), "{r}");
    assert_eq!(out["failed_status"], 404, "{r}");
    assert_eq!(
        out["failed_body"],
        json!({"error": "no such ticket"}),
        "{r}"
    );
    assert!(
        out["failed_message"]
            .as_str()
            .is_some_and(|m| m.contains("404")),
        "{r}"
    );
    assert_eq!(server.count("/tickets"), 2);
    assert_eq!(server.count("/missing"), 1);
}

#[test]
fn http_non_2xx_unhandled_fails_the_execution_unless_allowed() {
    let server = Server::start(|_, _| Reply::status(500, json!({"oops": true})));
    let env = Env::new();
    let wf = env.write(
        "http500.yaml",
        &format!(
            r#"
name: http500
input:
  allow: {{ type: boolean, default: false }}
tasks:
  call:
    action: http.request
    input: {{ method: DELETE, url: "{}/thing/1", allow_error_status: "{{{{ CTX.allow }}}}" }}
output:
  status: "{{{{ TASKS.call.result.status }}}}"
"#,
            server.base
        ),
    );
    let wf = wf.display().to_string();
    let r = env.run(&wf, &[]);
    r.expect(1, "failed");
    assert!(
        r.error().contains("call") && r.error().contains("500"),
        "{r}"
    );
    let r = env.run(&wf, &["--input", "allow=true"]);
    r.expect(0, "succeeded");
    assert_eq!(r.json["output"]["status"], 500, "{r}");
    assert!(server.hits().iter().all(|h| h.method == "DELETE"));
    assert_eq!(server.count("/thing/1"), 2);
}
