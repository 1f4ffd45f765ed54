//! Checking a case's expectations against what its execution did: each one that does not
//! hold is a [`Failure`] naming its line in the test file, what was expected and what came.

use serde_json::{Value, json};
use weft_engine::Workflow;
use weft_engine::chart::{on_label, route_label};

use super::file::{At, Case};
use super::run::Observed;

/// An expectation that did not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Its line in the test file.
    pub line: usize,
    /// Its column.
    pub column: usize,
    /// What did not hold.
    pub what: String,
    /// What the test file says.
    pub expected: Option<Value>,
    /// What the execution did.
    pub got: Option<Value>,
}

impl Failure {
    fn at<T>(at: &At<T>, what: String, expected: Option<Value>, got: Option<Value>) -> Failure {
        Failure {
            line: at.span.line,
            column: at.span.column,
            what,
            expected,
            got,
        }
    }
}

/// Does `have` contain `want`: objects key by key (recursively), lists item by item from
/// the start, other values equal. Numbers compare by value (`1` is `1.0`).
pub fn includes(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| includes(hv, wv))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() >= w.len() && w.iter().zip(h).all(|(wv, hv)| includes(hv, wv))
        }
        _ => same(have, want),
    }
}

/// Equal as JSON, numbers by value.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// How a route is named in expectations and coverage: `task → on failure → notify`.
pub fn describe_route(wf: &Workflow, task: &str, index: usize) -> String {
    let Some(route) = wf.tasks.get(task).and_then(|t| t.next.get(index)) else {
        return format!("{task} → route {index}");
    };
    let targets: Vec<&str> = route.targets.iter().map(|t| t.value.as_str()).collect();
    if targets.is_empty() {
        format!("{task} → {}", route_label(route))
    } else {
        format!("{task} → {} → {}", route_label(route), targets.join(", "))
    }
}

/// Does the route written `want` name the taken route (`task`, `index`)? It may be written
/// in full, or as `task → target`, or `task → on failure`.
fn names_route(wf: &Workflow, want: &str, task: &str, index: usize) -> bool {
    let norm = |s: &str| {
        s.replace("->", "→")
            .split('→')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" → ")
    };
    let want = norm(want);
    if want == norm(&describe_route(wf, task, index)) {
        return true;
    }
    let Some(route) = wf.tasks.get(task).and_then(|t| t.next.get(index)) else {
        return false;
    };
    let label = route_label(route);
    // `task → on success` names any success route, with a `when:` or without.
    let on = on_label(route.on);
    want == format!("{task} → {label}")
        || want == format!("{task} → {on}")
        || route
            .targets
            .iter()
            .any(|t| want == format!("{task} → {}", t.value))
}

/// Every expectation of `case` that `seen` breaks, plus the calls it could not answer.
pub fn check(case: &Case, wf: &Workflow, seen: &Observed) -> Vec<Failure> {
    let x = &case.expect;
    let mut out: Vec<Failure> = seen
        .problems
        .iter()
        .map(|p| Failure {
            line: case.span.line,
            column: case.span.column,
            what: p.clone(),
            expected: None,
            got: None,
        })
        .collect();
    // A case that says nothing expects the execution to succeed.
    let implied = At {
        value: "succeeded".to_string(),
        span: case.span,
    };
    let status = x.status.as_ref().or(x.is_empty().then_some(&implied));
    if let Some(want) = status
        && want.value != seen.status
    {
        let mut what = format!("the execution {}, not {}", seen.status, want.value);
        if let Some(e) = seen.error.as_ref().or(seen.filtered.as_ref()) {
            what.push_str(&format!(": {e}"));
        }
        out.push(Failure::at(
            want,
            what,
            Some(json!(want.value)),
            Some(json!(seen.status)),
        ));
    }
    if let Some(want) = &x.output
        && !same(&seen.output, &want.value)
    {
        out.push(Failure::at(
            want,
            "the output differs".into(),
            Some(want.value.clone()),
            Some(seen.output.clone()),
        ));
    }
    if let Some(want) = &x.output_includes
        && !includes(&seen.output, &want.value)
    {
        out.push(Failure::at(
            want,
            "the output does not include what is expected".into(),
            Some(want.value.clone()),
            Some(seen.output.clone()),
        ));
    }
    let tasks_json: serde_json::Map<String, Value> = seen
        .tasks
        .iter()
        .map(|(name, t)| {
            (
                name.clone(),
                json!({"status": t.status, "attempts": t.attempts, "result": t.result, "error": t.error}),
            )
        })
        .collect();
    for holds in &x.holds {
        let ctx = json!({
            "output": seen.output,
            "status": seen.status,
            "error": seen.error,
            "tasks": tasks_json,
        });
        let source = if holds.value.contains("{{") || holds.value.contains("{%") {
            holds.value.clone()
        } else {
            format!("{{{{ {} }}}}", holds.value)
        };
        match weft_engine::template::eval_condition(&source, &ctx) {
            Ok(true) => {}
            Ok(false) => out.push(Failure::at(
                holds,
                format!("`{}` does not hold", holds.value),
                Some(json!(true)),
                weft_engine::template::eval_str(&source, &ctx).ok(),
            )),
            Err(e) => out.push(Failure::at(
                holds,
                format!("`{}` cannot be evaluated: {e}", holds.value),
                None,
                None,
            )),
        }
    }
    let task = |name: &str| seen.tasks.get(name);
    let unknown = |at: &At<String>| {
        let known: Vec<&str> = wf.tasks.keys().map(String::as_str).collect();
        let hint = weft_engine::suggest::did_you_mean(&at.value, known.iter().copied())
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        Failure::at(
            at,
            format!("workflow `{}` has no task `{}`{hint}", wf.name, at.value),
            None,
            None,
        )
    };
    for name in &x.ran {
        match task(&name.value) {
            None => out.push(unknown(name)),
            Some(t) if !t.ran() => out.push(Failure::at(
                name,
                format!("task `{}` did not run ({})", name.value, t.status),
                None,
                Some(json!(t.status)),
            )),
            Some(_) => {}
        }
    }
    for name in &x.not_ran {
        match task(&name.value) {
            None => out.push(unknown(name)),
            Some(t) if t.ran() => out.push(Failure::at(
                name,
                format!("task `{}` ran ({})", name.value, t.status),
                None,
                Some(json!(t.status)),
            )),
            Some(_) => {}
        }
    }
    for (name, want) in &x.task_status {
        match task(name) {
            Some(t) if t.status == want.value => {}
            Some(t) => out.push(Failure::at(
                want,
                format!("task `{name}` {}, not {}", t.status, want.value),
                Some(json!(want.value)),
                Some(json!(t.status)),
            )),
            None => out.push(unknown(&At {
                value: name.clone(),
                span: want.span,
            })),
        }
    }
    for (name, want) in &x.attempts {
        match task(name) {
            Some(t) if t.attempts == want.value => {}
            Some(t) => out.push(Failure::at(
                want,
                format!(
                    "task `{name}` made {} attempt(s), not {}",
                    t.attempts, want.value
                ),
                Some(json!(want.value)),
                Some(json!(t.attempts)),
            )),
            None => out.push(unknown(&At {
                value: name.clone(),
                span: want.span,
            })),
        }
    }
    for (name, want) in &x.results {
        match task(name) {
            Some(t) if includes(&t.result, &want.value) => {}
            Some(t) => out.push(Failure::at(
                want,
                format!("task `{name}`'s result does not include what is expected"),
                Some(want.value.clone()),
                Some(t.result.clone()),
            )),
            None => out.push(unknown(&At {
                value: name.clone(),
                span: want.span,
            })),
        }
    }
    for (name, want) in &x.inputs {
        let first = seen
            .calls
            .iter()
            .find(|c| c.task == *name && c.workflow == wf.name);
        match first {
            Some(c) if includes(&c.input, &want.value) => {}
            Some(c) => out.push(Failure::at(
                want,
                format!("task `{name}` received another input"),
                Some(want.value.clone()),
                Some(c.input.clone()),
            )),
            None if task(name).is_none() => out.push(unknown(&At {
                value: name.clone(),
                span: want.span,
            })),
            None => out.push(Failure::at(
                want,
                format!("task `{name}` never called its action"),
                Some(want.value.clone()),
                None,
            )),
        }
    }
    for want in &x.routes {
        let taken = seen
            .routes
            .iter()
            .any(|(task, i)| names_route(wf, &want.value, task, *i));
        if !taken {
            let all: Vec<Value> = seen
                .routes
                .iter()
                .map(|(task, i)| json!(describe_route(wf, task, *i)))
                .collect();
            out.push(Failure::at(
                want,
                format!("the route `{}` was not followed", want.value),
                Some(json!(want.value)),
                Some(Value::Array(all)),
            ));
        }
    }
    if let Some(want) = &x.error {
        let got = seen
            .error
            .clone()
            .or(seen.filtered.clone())
            .unwrap_or_default();
        if !got.contains(&want.value) {
            out.push(Failure::at(
                want,
                "the execution's error does not contain the expected text".into(),
                Some(json!(want.value)),
                Some(if got.is_empty() {
                    Value::Null
                } else {
                    json!(got)
                }),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusion_is_by_key_and_by_leading_items() {
        assert!(includes(
            &json!({"a": 1, "b": {"c": [1, 2, 3], "d": 4}}),
            &json!({"b": {"c": [1, 2]}})
        ));
        assert!(!includes(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!includes(&json!([1]), &json!([1, 2])));
        assert!(includes(&json!(1.0), &json!(1)));
        assert!(same(&json!({"x": [1, 2.0]}), &json!({"x": [1.0, 2]})));
        assert!(!same(&json!({"x": 1, "y": 2}), &json!({"x": 1})));
    }
}
