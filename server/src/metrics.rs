//! Prometheus metrics for `GET /metrics`: a small in-process registry fed by the executor
//! (through [`Observer`]) and by the webhook handler, rendered in the text exposition format
//! 0.0.4. Every update takes one short, uncontended-in-practice lock per metric family.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use weft_actions::autotask::limits::TenantUsage;
use weft_engine::executor::observe::Observer;
use weft_engine::store::{ExecStatus, TaskStatus};

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the duration histograms' buckets; `+Inf` is implied.
pub const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The webhook outcomes counted by [`Metrics::webhook`].
pub const WEBHOOK_OUTCOMES: &[&str] = &["accepted", "rejected", "filtered", "duplicate"];

/// One histogram series: per-bucket counts (not cumulative; the last is `+Inf`).
#[derive(Debug, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let i = BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// weft's metrics. Share it as an `Arc<Metrics>`: install it in the engine with
/// `Engine::with_observer` and in the server state with `AppState::with_metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    started: Mutex<BTreeMap<String, u64>>,
    finished: Mutex<BTreeMap<(String, &'static str), u64>>,
    execution_duration: Mutex<BTreeMap<String, Histogram>>,
    task_duration: Mutex<BTreeMap<(String, String, &'static str), Histogram>>,
    webhooks: Mutex<BTreeMap<(String, String, String), u64>>,
    rejections: Mutex<BTreeMap<&'static str, u64>>,
    forms: Mutex<BTreeMap<(String, &'static str), u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a counter half-updated: keep counting.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Counts a webhook request: `outcome` is one of [`WEBHOOK_OUTCOMES`] (accepted,
    /// rejected, filtered, duplicate).
    pub fn webhook(&self, workflow: &str, trigger: &str, outcome: &str) {
        let mut m = lock(&self.webhooks);
        *m.entry((
            workflow.to_string(),
            trigger.to_string(),
            outcome.to_string(),
        ))
        .or_default() += 1;
    }

    /// Counts a refused request to `/hooks/*` by why it was refused (one of a fixed set of
    /// reasons, so that no caller can add series): also those that named no trigger.
    pub fn rejection(&self, reason: &'static str) {
        *lock(&self.rejections).entry(reason).or_default() += 1;
    }

    /// Counts a form submission by its outcome (one of a fixed set); `form` is empty when the
    /// link named none (unknown, turned off or expired), so no caller can add series.
    pub fn form(&self, form: &str, outcome: &'static str) {
        *lock(&self.forms)
            .entry((form.to_string(), outcome))
            .or_default() += 1;
    }

    /// The Prometheus text exposition (format 0.0.4). `queue_depth` is the number of
    /// executions waiting to run, when known (`weft_queue_depth` is left out otherwise).
    pub fn render(&self, queue_depth: Option<i64>) -> String {
        let mut out = String::with_capacity(4096);

        family(&mut out, "weft_up", "gauge", "1 when the server is up.");
        out.push_str("weft_up 1\n");
        family(
            &mut out,
            "weft_build_info",
            "gauge",
            "The running weft version (always 1).",
        );
        sample(
            &mut out,
            "weft_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            "1",
        );

        if let Some(depth) = queue_depth {
            family(
                &mut out,
                "weft_queue_depth",
                "gauge",
                "Executions waiting to run.",
            );
            sample(&mut out, "weft_queue_depth", &[], &depth.to_string());
        }

        family(
            &mut out,
            "weft_executions_started_total",
            "counter",
            "Executions that began running in this process (new or resumed).",
        );
        for (workflow, n) in lock(&self.started).iter() {
            sample(
                &mut out,
                "weft_executions_started_total",
                &[("workflow", workflow)],
                &n.to_string(),
            );
        }

        family(
            &mut out,
            "weft_executions_finished_total",
            "counter",
            "Executions that ended, by final status.",
        );
        for ((workflow, status), n) in lock(&self.finished).iter() {
            sample(
                &mut out,
                "weft_executions_finished_total",
                &[("workflow", workflow), ("status", status)],
                &n.to_string(),
            );
        }

        family(
            &mut out,
            "weft_execution_duration_seconds",
            "histogram",
            "How long executions ran, from start to end.",
        );
        for (workflow, h) in lock(&self.execution_duration).iter() {
            histogram(
                &mut out,
                "weft_execution_duration_seconds",
                &[("workflow", workflow)],
                h,
            );
        }

        family(
            &mut out,
            "weft_task_duration_seconds",
            "histogram",
            "How long tasks took to reach their outcome (retries included), by status.",
        );
        for ((workflow, task, status), h) in lock(&self.task_duration).iter() {
            histogram(
                &mut out,
                "weft_task_duration_seconds",
                &[("workflow", workflow), ("task", task), ("status", status)],
                h,
            );
        }

        family(
            &mut out,
            "weft_webhook_requests_total",
            "counter",
            "Webhook requests, by outcome (accepted, rejected, filtered, duplicate).",
        );
        for ((workflow, trigger, outcome), n) in lock(&self.webhooks).iter() {
            sample(
                &mut out,
                "weft_webhook_requests_total",
                &[
                    ("workflow", workflow),
                    ("trigger", trigger),
                    ("outcome", outcome),
                ],
                &n.to_string(),
            );
        }

        family(
            &mut out,
            "weft_form_submissions_total",
            "counter",
            "Form submissions, by outcome (accepted; refused: invalid, forged, too_large, rate_limited, not_found, expired). Refused submissions are only counted, never stored.",
        );
        for ((form, outcome), n) in lock(&self.forms).iter() {
            sample(
                &mut out,
                "weft_form_submissions_total",
                &[("form", form), ("outcome", outcome)],
                &n.to_string(),
            );
        }

        family(
            &mut out,
            "weft_webhook_rejections_total",
            "counter",
            "Refused requests to /hooks/*, by reason (bad_path, unknown_trigger, disabled, not_entitled — an org that is unknown or not one the trigger runs for —, unauthorized, source_limited, rate_limited, too_large, bad_request, invalid_input, unavailable, internal).",
        );
        for (reason, n) in lock(&self.rejections).iter() {
            sample(
                &mut out,
                "weft_webhook_rejections_total",
                &[("reason", reason)],
                &n.to_string(),
            );
        }
        autotask_families(&mut out, &weft_actions::autotask::limits::usage());
        out
    }
}

/// A series of one value per tenant: name, help, and how to read the value.
type Series = (&'static str, &'static str, fn(&TenantUsage) -> u64);

/// Autotask's limits as this process sees them, by API user (`tenant`): requests in flight
/// per endpoint, the hourly budget and its use, what was sent and what was paced.
fn autotask_families(out: &mut String, usage: &[TenantUsage]) {
    if usage.is_empty() {
        return;
    }
    family(
        out,
        "weft_autotask_requests_in_flight",
        "gauge",
        "Autotask requests this process has in flight, by tenant (API user) and endpoint (3 are allowed per endpoint across every process on the database).",
    );
    for u in usage {
        for (endpoint, n) in &u.in_flight {
            sample(
                out,
                "weft_autotask_requests_in_flight",
                &[("tenant", &u.tenant), ("endpoint", endpoint)],
                &n.to_string(),
            );
        }
    }
    let gauges: [Series; 2] = [
        (
            "weft_autotask_hourly_requests",
            "Requests to the tenant's Autotask database in the rolling hour, as last estimated (Autotask's ThresholdInformation or weft's own count, the larger).",
            |u| u.used,
        ),
        (
            "weft_autotask_hourly_budget",
            "Requests the tenant's Autotask database allows per rolling hour.",
            |u| u.budget,
        ),
    ];
    let counters: [Series; 2] = [
        (
            "weft_autotask_requests_total",
            "Autotask requests this process sent, by tenant.",
            |u| u.sent,
        ),
        (
            "weft_autotask_paced_total",
            "Background Autotask requests (sync, later query pages, with.items fan-out) this process delayed because the hourly budget ran low.",
            |u| u.paced,
        ),
    ];
    for (kind, list) in [("gauge", &gauges), ("counter", &counters)] {
        for (name, help, value) in list {
            family(out, name, kind, help);
            for u in usage {
                sample(out, name, &[("tenant", &u.tenant)], &value(u).to_string());
            }
        }
    }
}

impl Observer for Metrics {
    fn execution_started(&self, workflow: &str) {
        let mut m = lock(&self.started);
        match m.get_mut(workflow) {
            Some(n) => *n += 1,
            None => {
                m.insert(workflow.to_string(), 1);
            }
        }
    }

    fn execution_finished(&self, workflow: &str, status: ExecStatus, duration: Duration) {
        *lock(&self.finished)
            .entry((workflow.to_string(), status.as_str()))
            .or_default() += 1;
        let mut m = lock(&self.execution_duration);
        match m.get_mut(workflow) {
            Some(h) => h.observe(duration.as_secs_f64()),
            None => m
                .entry(workflow.to_string())
                .or_default()
                .observe(duration.as_secs_f64()),
        }
    }

    fn task_finished(&self, workflow: &str, task: &str, status: TaskStatus, duration: Duration) {
        lock(&self.task_duration)
            .entry((workflow.to_string(), task.to_string(), status.as_str()))
            .or_default()
            .observe(duration.as_secs_f64());
    }
}

/// `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    out.push('}');
}

fn sample(out: &mut String, name: &str, l: &[(&str, &str)], value: &str) {
    out.push_str(name);
    labels(out, l);
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// `_bucket` lines (cumulative), `_sum` and `_count`.
fn histogram(out: &mut String, name: &str, l: &[(&str, &str)], h: &Histogram) {
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0;
    for (i, n) in h.counts.iter().enumerate() {
        cumulative += n;
        let le = BUCKETS
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |b| format!("{b}"));
        let mut with_le = l.to_vec();
        with_le.push(("le", &le));
        sample(out, &bucket, &with_le, &cumulative.to_string());
    }
    sample(out, &format!("{name}_sum"), l, &format!("{}", h.sum));
    sample(out, &format!("{name}_count"), l, &h.count.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    fn value_of(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    #[test]
    fn autotask_limits_are_shown_per_tenant_and_endpoint() {
        let mut out = String::new();
        autotask_families(&mut out, &[]);
        assert!(out.is_empty(), "nothing before the first Autotask request");
        let usage = TenantUsage {
            tenant: "api@acme.example".into(),
            used: 8123,
            budget: 10_000,
            sent: 420,
            paced: 7,
            in_flight: [("TicketNotes".to_string(), 3), ("Tickets".to_string(), 1)].into(),
        };
        autotask_families(&mut out, &[usage]);
        for (series, value) in [
            (
                "weft_autotask_requests_in_flight{tenant=\"api@acme.example\",endpoint=\"TicketNotes\"}",
                3.0,
            ),
            (
                "weft_autotask_requests_in_flight{tenant=\"api@acme.example\",endpoint=\"Tickets\"}",
                1.0,
            ),
            (
                "weft_autotask_hourly_requests{tenant=\"api@acme.example\"}",
                8123.0,
            ),
            (
                "weft_autotask_hourly_budget{tenant=\"api@acme.example\"}",
                10_000.0,
            ),
            (
                "weft_autotask_requests_total{tenant=\"api@acme.example\"}",
                420.0,
            ),
            (
                "weft_autotask_paced_total{tenant=\"api@acme.example\"}",
                7.0,
            ),
        ] {
            assert_eq!(value_of(&out, series), Some(value), "{series} in\n{out}");
        }
        assert!(out.contains("# TYPE weft_autotask_paced_total counter"));
        assert!(out.contains("# TYPE weft_autotask_hourly_budget gauge"));
    }

    #[test]
    fn renders_up_build_info_and_help_lines() {
        let text = Metrics::new().render(None);
        assert!(text.contains("# HELP weft_up "));
        assert!(text.contains("# TYPE weft_up gauge\nweft_up 1\n"));
        assert!(text.contains(&format!(
            "weft_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(!text.contains("weft_queue_depth"));
        for name in [
            "weft_executions_started_total counter",
            "weft_executions_finished_total counter",
            "weft_execution_duration_seconds histogram",
            "weft_task_duration_seconds histogram",
            "weft_webhook_requests_total counter",
        ] {
            assert!(text.contains(&format!("# TYPE {name}\n")), "{name}");
        }
        assert!(text.ends_with('\n'));
        // Every non-comment line is `name{labels} value`.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.rsplit_once(' ').unwrap();
            v.parse::<f64>().unwrap();
        }
        let text = Metrics::new().render(Some(7));
        assert!(text.contains("# TYPE weft_queue_depth gauge\nweft_queue_depth 7\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
        let m = Metrics::new();
        m.webhook("w\"f", "t\\r", "a\nb");
        let text = m.render(None);
        assert!(
            text.contains(
                "weft_webhook_requests_total{workflow=\"w\\\"f\",trigger=\"t\\\\r\",outcome=\"a\\nb\"} 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new();
        for ms in [1, 7, 7, 300, 2_000, 120_000] {
            m.task_finished("wf", "t", TaskStatus::Succeeded, Duration::from_millis(ms));
        }
        let text = m.render(None);
        let prefix =
            "weft_task_duration_seconds_bucket{workflow=\"wf\",task=\"t\",status=\"succeeded\",le=";
        let buckets = lines_of(&text, prefix);
        assert_eq!(buckets.len(), BUCKETS.len() + 1);
        let counts: Vec<u64> = buckets
            .iter()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert_eq!(value_of(&text, &format!("{prefix}\"0.005\"}}")), Some(1.0));
        assert_eq!(value_of(&text, &format!("{prefix}\"0.01\"}}")), Some(3.0));
        assert_eq!(value_of(&text, &format!("{prefix}\"0.5\"}}")), Some(4.0));
        assert_eq!(value_of(&text, &format!("{prefix}\"2.5\"}}")), Some(5.0));
        assert_eq!(value_of(&text, &format!("{prefix}\"60\"}}")), Some(5.0));
        assert_eq!(value_of(&text, &format!("{prefix}\"+Inf\"}}")), Some(6.0));
        let labels = "{workflow=\"wf\",task=\"t\",status=\"succeeded\"}";
        assert_eq!(
            value_of(&text, &format!("weft_task_duration_seconds_count{labels}")),
            Some(6.0)
        );
        let sum = value_of(&text, &format!("weft_task_duration_seconds_sum{labels}")).unwrap();
        assert!((sum - 122.315).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn observer_calls_are_counted() {
        let m = Metrics::new();
        m.execution_started("a");
        m.execution_started("a");
        m.execution_started("b");
        m.execution_finished("a", ExecStatus::Succeeded, Duration::from_millis(20));
        m.execution_finished("a", ExecStatus::Failed, Duration::from_secs(3));
        m.task_finished("a", "x", TaskStatus::Failed, Duration::from_millis(1));
        m.webhook("a", "hook", "accepted");
        m.webhook("a", "hook", "accepted");
        m.webhook("a", "hook", "filtered");
        let text = m.render(None);
        let v = |s: &str| value_of(&text, s);
        assert_eq!(
            v("weft_executions_started_total{workflow=\"a\"}"),
            Some(2.0)
        );
        assert_eq!(
            v("weft_executions_started_total{workflow=\"b\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("weft_executions_finished_total{workflow=\"a\",status=\"succeeded\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("weft_executions_finished_total{workflow=\"a\",status=\"failed\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("weft_execution_duration_seconds_count{workflow=\"a\"}"),
            Some(2.0)
        );
        assert_eq!(
            v("weft_execution_duration_seconds_bucket{workflow=\"a\",le=\"0.025\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("weft_execution_duration_seconds_bucket{workflow=\"a\",le=\"5\"}"),
            Some(2.0)
        );
        assert_eq!(
            v("weft_task_duration_seconds_count{workflow=\"a\",task=\"x\",status=\"failed\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("weft_webhook_requests_total{workflow=\"a\",trigger=\"hook\",outcome=\"accepted\"}"),
            Some(2.0)
        );
        assert_eq!(
            v("weft_webhook_requests_total{workflow=\"a\",trigger=\"hook\",outcome=\"filtered\"}"),
            Some(1.0)
        );
        assert!(v("weft_executions_started_total{workflow=\"c\"}").is_none());
    }
}
