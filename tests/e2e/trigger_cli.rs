//! `weft trigger list|enable|disable|fire|events` on a database, without a server.

use crate::support::Env;

const NIGHTLY: &str = "name: nightly-report\ntriggers:\n  - name: nightly\n    type: cron\n    schedule: \"30 2 * * *\"\n    timezone: America/Chicago\n    input:\n      note: \"{{ 'by hand' if TRIGGER.manual else 'scheduled' }}\"\ninput:\n  note: {type: string}\ntasks:\n  report:\n    action: core.echo\n    input: {text: \"{{ CTX.note }}\"}\noutput:\n  note: \"{{ TASKS.report.result.text }}\"\n";

const HOOK: &str = "name: alert-hook\ntriggers:\n  - name: rmm\n    type: webhook\n    secret: none\ntasks:\n  a:\n    action: core.noop\n";

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn triggers_are_listed_switched_fired_and_their_events_shown() {
    let env = Env::new();
    let a = env.write("nightly.yaml", NIGHTLY);
    let b = env.write("hook.yaml", HOOK);
    let out = env.weft(&["deploy", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    let list = text(&env.weft(&["trigger", "list"]));
    assert!(list.contains("nightly-report"), "{list}");
    assert!(
        list.contains("30 2 * * * (America/Chicago), next "),
        "{list}"
    );
    assert!(list.contains("POST /hooks/rmm/{org}"), "{list}");

    let out = env.weft(&["trigger", "disable", "nightly-report", "nightly"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&env.weft(&["trigger", "list", "--json"]).stdout).unwrap();
    let nightly = json
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["trigger"] == "nightly")
        .unwrap();
    assert_eq!(nightly["enabled"], false);

    // Fired by hand (disabled or not) and run here.
    let out = env.weft(&["trigger", "fire", "nightly-report", "nightly", "--wait"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("accepted, 1 execution(s)"), "{shown}");
    assert!(shown.contains("succeeded"), "{shown}");
    let runs = env.list(None);
    let run = runs
        .iter()
        .find(|e| e["workflow_name"] == "nightly-report" || e["workflow"] == "nightly-report")
        .unwrap_or_else(|| panic!("{runs:#?}"));
    let id = run["id"].as_str().unwrap();
    assert_eq!(env.show(id)["output"]["note"], "by hand");

    let events = text(&env.weft(&["trigger", "events", "nightly-report", "nightly"]));
    assert!(events.contains("accepted"), "{events}");
    assert!(events.contains(id), "{events}");

    // Mistakes say what to do.
    let out = env.weft(&["trigger", "fire", "alert-hook", "rmm"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("only cron triggers fire by hand"),
        "{}",
        text(&out)
    );
    let out = env.weft(&["trigger", "enable", "nightly-report", "nigthly"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("(it has: nightly)"), "{}", text(&out));
}
