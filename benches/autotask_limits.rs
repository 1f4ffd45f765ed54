//! What Autotask's shared limits cost per request: `--requests N` (500 by default) sequential
//! `count` calls to the simulator over HTTP on 127.0.0.1, with the limits kept in this
//! process only (the baseline), then shared through a SQLite store (a slot taken and given
//! back, the request counted for the hourly budget), and through PostgreSQL with
//! `--postgres URL`. Each is timed three times; the figure is the median per request.
//!
//! `cargo bench --bench autotask_limits` (`-- --requests 500 --postgres
//! postgres://postgres@127.0.0.1:5432/test`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_actions::autotask::{Client, Filter};
use weft_engine::integration::Integration;
use weft_engine::store::LimitStore;
use weft_sim::{SimConfig, Simulator};

fn arg(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn per_request(client: &Client, n: usize) -> Duration {
    let mut runs = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        for _ in 0..n {
            client.count("Companies", &[Filter::all()]).await.unwrap();
        }
        runs.push(start.elapsed() / u32::try_from(n).unwrap());
    }
    runs.sort();
    runs[1]
}

#[tokio::main]
async fn main() {
    let n: usize = arg("--requests")
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let sim = Simulator::start_local(SimConfig::default()).await;
    let (user, secret, code) = sim.credentials();
    let integration = Integration::new("autotask", "default")
        .with_setting("username", user)
        .with_setting("integration_code", code)
        .with_setting("discovery_url", sim.base_url.trim_end_matches('/'))
        .with_setting("threshold_check", 0)
        .with_secret("secret", secret);

    let local = Client::from_integration(&integration).unwrap();
    local.zone().await.unwrap();
    let baseline = per_request(&local, n).await;
    println!("{n} sequential requests, median of 3 runs, per request:");
    println!("  limits in this process (baseline)   {baseline:>10.1?}");

    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn LimitStore> =
        weft_engine::store::open(&format!("sqlite://{}/weft.db", dir.path().display()))
            .await
            .unwrap();
    let shared = Client::from_integration(&integration.clone().sharing_limits(sqlite)).unwrap();
    let t = per_request(&shared, n).await;
    println!(
        "  shared through SQLite               {t:>10.1?}  (+{:.1?}, {:.2}x)",
        t.saturating_sub(baseline),
        t.as_secs_f64() / baseline.as_secs_f64()
    );

    if let Some(url) = arg("--postgres") {
        let pg: Arc<dyn LimitStore> = weft_engine::store::open(&url).await.unwrap();
        let shared = Client::from_integration(&integration.clone().sharing_limits(pg)).unwrap();
        let t = per_request(&shared, n).await;
        println!(
            "  shared through PostgreSQL           {t:>10.1?}  (+{:.1?}, {:.2}x)",
            t.saturating_sub(baseline),
            t.as_secs_f64() / baseline.as_secs_f64()
        );
    }
}
