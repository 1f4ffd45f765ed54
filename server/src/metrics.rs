//! Prometheus metrics for `GET /metrics`, kept in a `prometheus-client` registry fed by the
//! executor (through [`Observer`]) and by the webhook and form handlers, and rendered in the
//! Prometheus text format 0.0.4 (not OpenMetrics: scrapers and tests read the classic form,
//! with `_total` in counters' `# TYPE` lines and no `# EOF`). A family with no series yet is
//! left out of the text (prometheus-client skips empty families).
//!
//! What is only known at scrape time is encoded then: the queue depth (passed to
//! [`Metrics::render`]) and the Autotask limits (a [`Collector`] over
//! `weft_actions::autotask::limits::usage()`).

use std::fmt;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use weft_actions::autotask::limits::TenantUsage;
use weft_engine::executor::observe::Observer;
use weft_engine::store::{ExecStatus, TaskStatus};

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the duration histograms' buckets; `+Inf` is implied.
pub const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The webhook outcomes counted by [`Metrics::webhook`].
pub const WEBHOOK_OUTCOMES: &[&str] = &["accepted", "rejected", "filtered", "duplicate"];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WorkflowLabels {
    workflow: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FinishedLabels {
    workflow: String,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TaskLabels {
    workflow: String,
    task: String,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WebhookLabels {
    workflow: String,
    trigger: String,
    outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RejectionLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FormLabels {
    form: String,
    outcome: &'static str,
}

/// A histogram family whose series all have [`BUCKETS`].
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(BUCKETS.iter().copied())
}

/// prometheus-client ends every registered help text with a period; ours already have one.
fn help(text: &'static str) -> &'static str {
    text.strip_suffix('.').unwrap_or(text)
}

/// weft's metrics. Share it as an `Arc<Metrics>`: install it in the engine with
/// `Engine::with_observer` and in the server state with `AppState::with_metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    started: Family<WorkflowLabels, Counter>,
    finished: Family<FinishedLabels, Counter>,
    execution_duration: Histograms<WorkflowLabels>,
    task_duration: Histograms<TaskLabels>,
    webhooks: Family<WebhookLabels, Counter>,
    rejections: Family<RejectionLabels, Counter>,
    forms: Family<FormLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            started: Family::default(),
            finished: Family::default(),
            execution_duration: Family::new_with_constructor(duration_histogram),
            task_duration: Family::new_with_constructor(duration_histogram),
            webhooks: Family::default(),
            rejections: Family::default(),
            forms: Family::default(),
        };
        let mut registry = Registry::default();
        registry.register(
            "weft_up",
            help("1 when the server is up."),
            ConstGauge::new(1),
        );
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "weft_build_info",
            help("The running weft version (always 1)."),
            build_info,
        );
        // Counters are registered without `_total`: the encoder appends it.
        registry.register(
            "weft_executions_started",
            help("Executions that began running in this process (new or resumed)."),
            m.started.clone(),
        );
        registry.register(
            "weft_executions_finished",
            help("Executions that ended, by final status."),
            m.finished.clone(),
        );
        registry.register(
            "weft_execution_duration_seconds",
            help("How long executions ran, from start to end."),
            m.execution_duration.clone(),
        );
        registry.register(
            "weft_task_duration_seconds",
            help("How long tasks took to reach their outcome (retries included), by status."),
            m.task_duration.clone(),
        );
        registry.register(
            "weft_webhook_requests",
            help("Webhook requests, by outcome (accepted, rejected, filtered, duplicate)."),
            m.webhooks.clone(),
        );
        registry.register(
            "weft_form_submissions",
            help(
                "Form submissions, by outcome (accepted; refused: invalid, forged, too_large, rate_limited, not_found, expired). Refused submissions are only counted, never stored.",
            ),
            m.forms.clone(),
        );
        registry.register(
            "weft_webhook_rejections",
            help(
                "Refused requests to /hooks/*, by reason (bad_path, unknown_trigger, disabled, not_entitled — an org that is unknown or not one the trigger runs for —, unauthorized, source_limited, rate_limited, too_large, bad_request, invalid_input, unavailable, internal).",
            ),
            m.rejections.clone(),
        );
        registry.register_collector(Box::new(AutotaskLimits));
        Metrics { registry, ..m }
    }

    /// Counts a webhook request: `outcome` is one of [`WEBHOOK_OUTCOMES`] (accepted,
    /// rejected, filtered, duplicate).
    pub fn webhook(&self, workflow: &str, trigger: &str, outcome: &str) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                workflow: workflow.to_string(),
                trigger: trigger.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts a refused request to `/hooks/*` by why it was refused (one of a fixed set of
    /// reasons, so that no caller can add series): also those that named no trigger.
    pub fn rejection(&self, reason: &'static str) {
        self.rejections
            .get_or_create(&RejectionLabels { reason })
            .inc();
    }

    /// Counts a form submission by its outcome (one of a fixed set); `form` is empty when the
    /// link named none (unknown, turned off or expired), so no caller can add series.
    pub fn form(&self, form: &str, outcome: &'static str) {
        self.forms
            .get_or_create(&FormLabels {
                form: form.to_string(),
                outcome,
            })
            .inc();
    }

    /// The Prometheus text exposition (format 0.0.4). `queue_depth` is the number of
    /// executions waiting to run, when known (`weft_queue_depth` is left out otherwise).
    pub fn render(&self, queue_depth: Option<i64>) -> String {
        let mut out = String::with_capacity(4096);
        // The queue depth is read by the caller for each scrape, so it lives in a registry
        // of its own, made per scrape.
        let mut scrape = Registry::default();
        if let Some(depth) = queue_depth {
            scrape.register(
                "weft_queue_depth",
                help("Executions waiting to run."),
                ConstGauge::new(depth),
            );
        }
        // Writing into a String cannot fail, and every metric here encodes without error.
        let _ = prometheus_text::encode(&mut out, &scrape);
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Autotask's limits as this process sees them, by API user (`tenant`): requests in flight
/// per endpoint, the hourly budget and its use, what was sent and what was paced. Read from
/// the process-wide limiter at each scrape.
#[derive(Debug)]
struct AutotaskLimits;

impl Collector for AutotaskLimits {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        autotask_families(encoder, &weft_actions::autotask::limits::usage())
    }
}

/// A series of one value per tenant: name (without a counter's `_total`), help, and how to
/// read the value.
type Series = (&'static str, &'static str, fn(&TenantUsage) -> u64);

fn autotask_families(mut encoder: DescriptorEncoder, usage: &[TenantUsage]) -> fmt::Result {
    if usage.is_empty() {
        return Ok(());
    }
    {
        let mut family = encoder.encode_descriptor(
            "weft_autotask_requests_in_flight",
            "Autotask requests this process has in flight, by tenant (API user) and endpoint (3 are allowed per endpoint across every process on the database).",
            None,
            MetricType::Gauge,
        )?;
        for u in usage {
            for (endpoint, n) in &u.in_flight {
                let labels = [
                    ("tenant", u.tenant.as_str()),
                    ("endpoint", endpoint.as_str()),
                ];
                ConstGauge::new(*n as u64).encode(family.encode_family(&labels)?)?;
            }
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
            "weft_autotask_requests",
            "Autotask requests this process sent, by tenant.",
            |u| u.sent,
        ),
        (
            "weft_autotask_paced",
            "Background Autotask requests (sync, later query pages, with.items fan-out) this process delayed because the hourly budget ran low.",
            |u| u.paced,
        ),
    ];
    for (kind, list) in [
        (MetricType::Gauge, &gauges),
        (MetricType::Counter, &counters),
    ] {
        for (name, help, value) in list {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for u in usage {
                let labels = [("tenant", u.tenant.as_str())];
                let family = family.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => ConstCounter::new(value(u)).encode(family)?,
                    _ => ConstGauge::new(value(u)).encode(family)?,
                }
            }
        }
    }
    Ok(())
}

impl Observer for Metrics {
    fn execution_started(&self, workflow: &str) {
        self.started
            .get_or_create(&WorkflowLabels {
                workflow: workflow.to_string(),
            })
            .inc();
    }

    fn execution_finished(&self, workflow: &str, status: ExecStatus, duration: Duration) {
        let labels = WorkflowLabels {
            workflow: workflow.to_string(),
        };
        self.finished
            .get_or_create(&FinishedLabels {
                workflow: labels.workflow.clone(),
                status: status.as_str(),
            })
            .inc();
        self.execution_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    fn task_finished(&self, workflow: &str, task: &str, status: TaskStatus, duration: Duration) {
        self.task_duration
            .get_or_create(&TaskLabels {
                workflow: workflow.to_string(),
                task: task.to_string(),
                status: status.as_str(),
            })
            .observe(duration.as_secs_f64());
    }
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

    /// A fixed usage snapshot in place of the process-wide limiter's.
    #[derive(Debug)]
    struct Fixed(Vec<TenantUsage>);

    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
            autotask_families(encoder, &self.0)
        }
    }

    fn autotask_text(usage: Vec<TenantUsage>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Fixed(usage)));
        let mut out = String::new();
        prometheus_text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn autotask_limits_are_shown_per_tenant_and_endpoint() {
        let out = autotask_text(Vec::new());
        assert!(out.is_empty(), "nothing before the first Autotask request");
        let usage = TenantUsage {
            tenant: "api@acme.example".into(),
            used: 8123,
            budget: 10_000,
            sent: 420,
            paced: 7,
            in_flight: [("TicketNotes".to_string(), 3), ("Tickets".to_string(), 1)].into(),
        };
        let out = autotask_text(vec![usage]);
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
        assert!(out.contains("# TYPE weft_autotask_requests_in_flight gauge"));
        assert!(out.contains(
            "# HELP weft_autotask_requests_total Autotask requests this process sent, by tenant.\n"
        ));
    }

    #[test]
    fn renders_up_build_info_and_help_lines() {
        let m = Metrics::new();
        let text = m.render(None);
        assert!(text.contains("# HELP weft_up 1 when the server is up.\n"));
        assert!(text.contains("# TYPE weft_up gauge\nweft_up 1\n"));
        assert!(text.contains(&format!(
            "weft_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(!text.contains("weft_queue_depth"));
        // A family shows once it has a series (prometheus-client leaves out empty ones).
        assert!(!text.contains("weft_executions_started_total"), "{text}");
        m.execution_started("wf");
        m.execution_finished("wf", ExecStatus::Succeeded, Duration::from_millis(3));
        m.task_finished("wf", "t", TaskStatus::Succeeded, Duration::from_millis(1));
        m.webhook("wf", "hook", "accepted");
        m.form("new-user", "accepted");
        m.rejection("bad_path");
        let text = m.render(None);
        assert!(text.contains(
            "# HELP weft_executions_finished_total Executions that ended, by final status.\n"
        ));
        for name in [
            "weft_executions_started_total counter",
            "weft_executions_finished_total counter",
            "weft_execution_duration_seconds histogram",
            "weft_task_duration_seconds histogram",
            "weft_webhook_requests_total counter",
            "weft_form_submissions_total counter",
            "weft_webhook_rejections_total counter",
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
