//! `openai.chat`, `notify.teams`, `notify.slack` and `email.send` against the simulator's
//! fakes over real sockets on 127.0.0.1.

use serde_json::{Value, json};
use weft_engine::ActionErrorKind;
use weft_engine::integration::Integration;
use weft_sim::{DEFAULT_OPENAI_KEY, RunningSim, SimConfig, Simulator, SmtpSink};

mod common;
use common::{call, context_with as context};

fn openai(sim: &RunningSim, key: &str) -> Integration {
    Integration::new("openai", "default")
        .with_setting("base_url", sim.openai_base_url())
        .with_setting("model", "gpt-4o-mini")
        .with_secret("api_key", key)
}

#[tokio::test]
async fn chat_with_a_prompt() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(vec![openai(&sim, DEFAULT_OPENAI_KEY)]);
    let out = call(
        &cx,
        "openai.chat",
        json!({
            "system": "Draft a reply to the customer's ticket.",
            "prompt": "I am locked out, my password expired",
            "temperature": 0.2,
            "max_tokens": 300,
        }),
    )
    .await
    .unwrap();
    assert!(
        out["content"]
            .as_str()
            .unwrap()
            .contains("reset your password"),
        "{out}"
    );
    assert_eq!(out["model"], "gpt-4o-mini");
    assert_eq!(out["finish_reason"], "stop");
    assert!(out["usage"]["total_tokens"].as_u64().unwrap() > 0, "{out}");
    assert!(out.get("json").is_none(), "{out}");

    let reqs = sim.openai_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0]["messages"][0]["role"], "system");
    assert_eq!(reqs[0]["messages"][1]["role"], "user");
    assert_eq!(reqs[0]["max_tokens"], 300);
    assert!(reqs[0].get("response_format").is_none());

    // A per-task model and an explicit conversation.
    let out = call(
        &cx,
        "openai.chat",
        json!({
            "model": "gpt-4.1",
            "messages": [
                {"role": "system", "content": "Summarize the ticket."},
                {"role": "user", "content": "Long story about a laptop."},
            ],
        }),
    )
    .await
    .unwrap();
    assert_eq!(out["model"], "gpt-4.1");
    assert!(
        out["content"].as_str().unwrap().contains("customer"),
        "{out}"
    );
}

#[tokio::test]
async fn json_mode_is_parsed() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(vec![openai(&sim, DEFAULT_OPENAI_KEY)]);
    let out = call(
        &cx,
        "openai.chat",
        json!({
            "system": "Categorize the ticket. Answer with JSON {category, priority}.",
            "prompt": "The printer on the 2nd floor is jammed again",
            "json": true,
        }),
    )
    .await
    .unwrap();
    assert_eq!(out["json"]["category"], "Hardware", "{out}");
    assert_eq!(
        serde_json::from_str::<Value>(out["content"].as_str().unwrap()).unwrap(),
        out["json"]
    );
    assert_eq!(
        sim.openai_requests()[0]["response_format"],
        json!({"type": "json_object"})
    );

    let out = call(
        &cx,
        "openai.chat",
        json!({
            "system": "Rate the sentiment of the message.",
            "prompt": "This is unacceptable, we are furious",
            "response_schema": {"type": "object", "properties": {"sentiment": {"type": "string"}, "score": {"type": "number"}}},
        }),
    )
    .await
    .unwrap();
    assert_eq!(out["json"]["sentiment"], "negative", "{out}");
    assert!(out["json"]["score"].as_f64().unwrap() < 0.0);
    let rf = &sim.openai_requests()[1]["response_format"];
    assert_eq!(rf["type"], "json_schema");
    assert_eq!(rf["json_schema"]["name"], "response");
}

#[tokio::test]
async fn a_wrong_key_fails_without_showing_it() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let key = "sk-wrong-secret-key-0123456789";
    let cx = context(vec![openai(&sim, key)]);
    let err = call(&cx, "openai.chat", json!({"prompt": "hello"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ActionErrorKind::Failed);
    assert!(err.message.contains("401"), "{}", err.message);
    assert!(
        err.message.contains("Incorrect API key"),
        "the API's own message is shown: {}",
        err.message
    );
    let all = format!("{} {}", err.message, err.data.clone().unwrap_or_default());
    assert!(!all.contains(key), "{all}");
    let data = err.data.unwrap();
    assert_eq!(data["status"], 401);
    assert_eq!(data["retryable"], false);
    assert!(sim.openai_requests().is_empty());
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(vec![openai(&sim, DEFAULT_OPENAI_KEY)]);
    for (marker, status) in [("[sim-fail:429]", 429), ("[sim-fail:503]", 503)] {
        let err = call(
            &cx,
            "openai.chat",
            json!({"prompt": format!("hi {marker}")}),
        )
        .await
        .unwrap_err();
        let data = err.data.unwrap();
        assert_eq!(data["status"], status, "{data}");
        assert_eq!(data["retryable"], true, "{data}");
        assert!(err.message.contains(&status.to_string()), "{}", err.message);
    }
    // A server that is not there: a retryable transport error.
    let cx = context(vec![
        Integration::new("openai", "default")
            .with_setting("base_url", "http://127.0.0.1:9/v1")
            .with_setting("model", "m")
            .with_secret("api_key", "k-123456"),
    ]);
    let err = call(&cx, "openai.chat", json!({"prompt": "x"}))
        .await
        .unwrap_err();
    assert_eq!(err.data.unwrap()["retryable"], true);
    // No integration: a message naming the kind.
    let cx = context(vec![]);
    let err = call(&cx, "openai.chat", json!({"prompt": "x"}))
        .await
        .unwrap_err();
    assert!(err.message.contains("openai"), "{}", err.message);
}

#[tokio::test]
async fn teams_card_reaches_the_sink() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(vec![
        Integration::new("teams", "default").with_setting("url", sim.teams_url("ops")),
    ]);
    let out = call(
        &cx,
        "notify.teams",
        json!({
            "title": "Ticket T20261123.0001 created",
            "text": "Printer jammed at **Acme Dental**",
            "facts": [{"name": "Priority", "value": "High"}, {"name": "Queue", "value": 5}],
            "link": {"title": "Open in Autotask", "url": "https://ww1.autotask.net/t/1"},
        }),
    )
    .await
    .unwrap();
    assert_eq!(out, json!({"status": 200, "delivered": true}));
    let msgs = sim.sink_messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].kind, "teams");
    assert_eq!(msgs[0].channel, "ops");
    let body = &msgs[0].body;
    assert_eq!(body["type"], "message");
    let att = &body["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &att["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(card["body"][0]["text"], "Ticket T20261123.0001 created");
    assert_eq!(card["body"][1]["text"], "Printer jammed at **Acme Dental**");
    assert_eq!(
        card["body"][2],
        json!({"type": "FactSet", "facts": [{"title": "Priority", "value": "High"}, {"title": "Queue", "value": "5"}]})
    );
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(card["actions"][0]["url"], "https://ww1.autotask.net/t/1");

    // A webhook_url parameter needs no integration; a bad one fails without showing its path.
    let cx = context(vec![]);
    let bad = format!("{}/sinks/nowhere/secret-token-xyz", sim.root_url);
    let err = call(
        &cx,
        "notify.teams",
        json!({"text": "x", "webhook_url": bad}),
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("404"), "{}", err.message);
    assert!(!err.message.contains("secret-token-xyz"), "{}", err.message);
    let out = call(
        &cx,
        "notify.teams",
        json!({"text": "direct", "webhook_url": sim.teams_url("alerts")}),
    )
    .await
    .unwrap();
    assert_eq!(out["delivered"], true);
    assert_eq!(sim.sink_messages()[1].channel, "alerts");
}

#[tokio::test]
async fn slack_blocks_reach_the_sink() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    let cx = context(vec![
        Integration::new("slack", "default").with_secret("url", sim.slack_url("noc")),
    ]);
    call(
        &cx,
        "notify.slack",
        json!({
            "title": "Server down",
            "text": "*srv-01* stopped answering",
            "fields": {"Client": "Acme Dental", "Since": "09:14"},
            "link": {"title": "Runbook", "url": "https://wiki.example/runbook"},
        }),
    )
    .await
    .unwrap();
    call(
        &cx,
        "notify.slack",
        json!({"text": "fallback", "blocks": [{"type": "divider"}]}),
    )
    .await
    .unwrap();
    let msgs = sim.sink_messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        (msgs[0].kind.as_str(), msgs[0].channel.as_str()),
        ("slack", "noc")
    );
    let b = &msgs[0].body;
    assert_eq!(b["text"], "*srv-01* stopped answering");
    assert_eq!(
        b["blocks"][0],
        json!({"type": "header", "text": {"type": "plain_text", "text": "Server down", "emoji": true}})
    );
    assert_eq!(b["blocks"][1]["text"]["type"], "mrkdwn");
    assert_eq!(
        b["blocks"][2]["fields"],
        json!([{"type": "mrkdwn", "text": "*Client*\nAcme Dental"}, {"type": "mrkdwn", "text": "*Since*\n09:14"}])
    );
    assert_eq!(
        b["blocks"][3]["elements"][0]["url"],
        "https://wiki.example/runbook"
    );
    assert_eq!(
        msgs[1].body,
        json!({"text": "fallback", "blocks": [{"type": "divider"}]})
    );

    let err = call(&cx, "notify.slack", json!({})).await.unwrap_err();
    assert_eq!(err.kind, ActionErrorKind::InvalidParams);
}

fn email(sink: &SmtpSink) -> Integration {
    Integration::new("email", "default")
        .with_setting("host", "127.0.0.1")
        .with_setting("port", sink.port())
        .with_setting("security", "none")
        .with_setting("from", "Weft Alerts <alerts@msp.test>")
}

#[tokio::test]
async fn email_is_delivered() {
    let sink = SmtpSink::start().await.unwrap();
    let cx = context(vec![email(&sink)]);
    let out = call(
        &cx,
        "email.send",
        json!({
            "to": "Jane Doe <jane@client.test>, bob@client.test",
            "cc": ["noc@msp.test"],
            "subject": "Ticket T20261123.0001 resolved",
            "text": "Hello Jane,\n.\nYour ticket is resolved.",
            "html": "<p>Hello Jane,</p><p>Your ticket is <b>resolved</b>.</p>",
        }),
    )
    .await
    .unwrap();
    assert_eq!(out["delivered"], true);
    assert_eq!(
        out["recipients"],
        json!(["jane@client.test", "bob@client.test", "noc@msp.test"])
    );
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.from, "alerts@msp.test");
    assert_eq!(
        m.to,
        vec!["jane@client.test", "bob@client.test", "noc@msp.test"]
    );
    assert!(
        m.data.contains("Subject: Ticket T20261123.0001 resolved"),
        "{}",
        m.data
    );
    assert!(
        m.data
            .contains("To: \"Jane Doe\" <jane@client.test>, bob@client.test")
            || m.data
                .contains("To: Jane Doe <jane@client.test>, bob@client.test"),
        "{}",
        m.data
    );
    assert!(m.data.contains("Cc: noc@msp.test"), "{}", m.data);
    assert!(
        m.data.contains("From: Weft Alerts <alerts@msp.test>")
            || m.data.contains("From: \"Weft Alerts\" <alerts@msp.test>"),
        "{}",
        m.data
    );
    assert!(m.data.contains("Your ticket is resolved."), "{}", m.data);
    assert!(m.data.contains("<b>resolved</b>"), "{}", m.data);
    assert!(m.data.contains("multipart/alternative"), "{}", m.data);
    assert!(
        m.data.contains(out["message_id"].as_str().unwrap()),
        "{}",
        m.data
    );
}

#[tokio::test]
async fn email_authenticates_and_never_shows_the_password() {
    let sink = SmtpSink::start_with_auth("alerts@msp.test", "right-pass")
        .await
        .unwrap();
    let ok = email(&sink)
        .with_setting("username", "alerts@msp.test")
        .with_secret("password", "right-pass");
    let cx = context(vec![ok]);
    call(
        &cx,
        "email.send",
        json!({"to": "a@b.test", "subject": "s", "text": "t"}),
    )
    .await
    .unwrap();
    assert_eq!(
        sink.messages()[0].auth_user.as_deref(),
        Some("alerts@msp.test")
    );

    let bad = email(&sink)
        .with_setting("username", "alerts@msp.test")
        .with_secret("password", "wrong-pass-987");
    let cx = context(vec![bad]);
    let err = call(
        &cx,
        "email.send",
        json!({"to": "a@b.test", "subject": "s", "text": "t"}),
    )
    .await
    .unwrap_err();
    let all = format!("{} {}", err.message, err.data.clone().unwrap_or_default());
    assert!(!all.contains("wrong-pass-987"), "{all}");
    assert_eq!(err.data.unwrap()["retryable"], false, "{}", err.message);
    assert_eq!(sink.messages().len(), 1);

    // Nobody listening: a retryable connection error.
    drop(sink);
    let cx = context(vec![
        Integration::new("email", "default")
            .with_setting("host", "127.0.0.1")
            .with_setting("port", 9)
            .with_setting("security", "none")
            .with_setting("from", "a@b.test"),
    ]);
    let err = call(
        &cx,
        "email.send",
        json!({"to": "a@b.test", "subject": "s", "text": "t"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.data.unwrap()["retryable"], true, "{}", err.message);
}
