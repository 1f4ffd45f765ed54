//! The validator never panics, whatever it is fed, and refuses hostile YAML quickly.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use weft_engine::{ActionSpec, Registry, load};

fn registry() -> Registry {
    let mut r = Registry::new();
    for name in ["core.noop", "core.echo", "core.fail"] {
        r.register_spec(ActionSpec {
            name: name.into(),
            description: "test".into(),
            params: serde_json::json!({"type": "object"}),
            local: false,
        });
    }
    r
}

const SAMPLE: &str = r#"version: 1
name: sample
description: "Ünïcode — and quotes: 'x'"
input:
  alert: { type: object, required: true }
  limit: { type: integer, default: 3 }
vars:
  queue: "{{ CTX.alert.queue | default(5) }}"
tasks:
  start:
    action: core.noop
    next:
      - do: [a, b]
  a:
    action: core.echo
    with: { items: "{{ CTX.alert.hosts[:CTX.limit] }}", concurrency: 2 }
    input:
      host: "{{ item() }}"
      text: |
        {% for h in CTX.alert.hosts %}
        - {{ h | upper }}
        {% endfor %}
    retry: { count: 2, delay: 1s, backoff: 2.0 }
    next:
      - when: "{{ succeeded() and RESULT | length > 0 }}"
        publish: { hosts: "{{ RESULT }}" }
        do: end
      - on: failure
        do: report
  report:
    action: core.echo
    input: { message: "{{ TASKS.a.error }}" }
  b:
    action: core.fail
    timeout: 30s
    next:
      - on: always
        do: end
  end:
    action: core.noop
    join: all
output:
  hosts: "{{ CTX.hosts | default([]) }}"
triggers:
  - { name: rmm, type: webhook, secret: required, criteria: "{{ TRIGGER.body.severity == 'high' }}" }
  - { name: nightly, type: cron, schedule: "0 2 * * *", timezone: Europe/London, input: { alert: {} } }
"#;

#[test]
fn the_sample_is_valid() {
    let loaded = load(SAMPLE, &registry());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
}

#[test]
fn every_truncation_is_handled() {
    let r = registry();
    for (i, _) in SAMPLE.char_indices() {
        let _ = load(&SAMPLE[..i], &r);
    }
}

#[test]
fn billion_laughs_is_refused_quickly_with_a_clear_error() {
    let mut src = String::from(
        "name: lol\na0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..12 {
        let p = i - 1;
        src.push_str(&format!(
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    src.push_str("tasks: {}\n");
    let started = Instant::now();
    let loaded = load(&src, &registry());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(loaded.diagnostics.len(), 1);
    assert_eq!(loaded.diagnostics[0].code, "yaml.too_large");
    assert!(loaded.diagnostics[0].message.contains("aliases"));
}

#[test]
fn deep_nesting_is_refused() {
    let src = format!(
        "name: deep\ntasks: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let loaded = load(&src, &registry());
    assert!(loaded.has_errors());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_yaml_like_text_never_panics(s in "[a-z{}\\[\\]:,&*!|>'\"%#\\- \n\t0-9]{0,200}") {
        let _ = load(&s, &registry());
    }

    #[test]
    fn mutated_workflows_never_panic(pos in 0usize..SAMPLE.len(), len in 0usize..40, insert in "[a-z{}\\[\\]:,&*|'\"%\\- \n]{0,8}") {
        let mut s = SAMPLE.to_string();
        let start = (0..=pos).rev().find(|&p| s.is_char_boundary(p)).unwrap_or(0);
        let end = (start + len..=s.len()).find(|&p| s.is_char_boundary(p)).unwrap_or(s.len());
        s.replace_range(start..end, &insert);
        let loaded = load(&s, &registry());
        for d in &loaded.diagnostics {
            prop_assert!(d.span.offset <= s.len());
            prop_assert!(d.span.line >= 1 && d.span.column >= 1);
        }
    }
}
