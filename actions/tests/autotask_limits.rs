//! Autotask's limits as a busy tenant meets them, against the simulator over real HTTP: the
//! thread limit counted per real endpoint and held across processes through the store, and
//! the hourly request budget (read from `ThresholdInformation`, paced, refused at the end).

use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_actions::autotask::limits;
use weft_actions::autotask::{Client, ErrorKind, Filter};
use weft_engine::integration::Integration;
use weft_engine::store::LimitStore;
use weft_sim::{FailureConfig, RunningSim, SimConfig, Simulator};

mod common;
use common::sim_integration as integration;

/// Requests the simulator refused for the thread limit.
fn thread_refusals(sim: &RunningSim) -> usize {
    sim.request_log()
        .iter()
        .filter(|e| e.status == 500 && e.in_flight > 3)
        .count()
}

#[tokio::test]
async fn a_child_route_counts_against_its_child_entity() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    sim.set_failures(FailureConfig {
        enforce_thread_limit: true,
        latency: Some(Duration::from_millis(150)),
        ..FailureConfig::default()
    });
    let client = Arc::new(
        Client::from_integration(&integration(&sim).with_setting("threshold_check", 0)).unwrap(),
    );
    let note = sim.records("TicketNotes")[0].clone();
    let (ticket, note_id) = (
        note["ticketID"].as_i64().unwrap(),
        note["id"].as_i64().unwrap(),
    );
    let start = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..6 {
        let client = client.clone();
        calls.spawn(async move {
            if i % 2 == 0 {
                client
                    .get(&format!("Tickets/{ticket}/Notes"), note_id)
                    .await
                    .map(|_| ())
            } else {
                client
                    .count("TicketNotes", &[Filter::all()])
                    .await
                    .map(|_| ())
            }
        });
    }
    while let Some(r) = calls.join_next().await {
        r.unwrap().unwrap();
    }
    // Six requests, three at a time, to one endpoint: two rounds.
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "Tickets/{{id}}/Notes and TicketNotes shared three slots: {:?}",
        start.elapsed()
    );
    assert_eq!(thread_refusals(&sim), 0, "{:#?}", sim.request_log());
    assert!(sim.max_concurrency("TicketNotes") <= 3);
}

#[tokio::test]
async fn slots_held_by_another_process_are_respected_until_they_lapse() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    sim.set_failures(FailureConfig {
        enforce_thread_limit: true,
        latency: Some(Duration::from_millis(120)),
        ..FailureConfig::default()
    });
    let dir = tempdir();
    let _cleanup = Cleanup(dir.clone());
    let store: Arc<dyn weft_engine::store::Store> =
        weft_engine::store::open(&format!("sqlite://{}/weft.db", dir.display()))
            .await
            .unwrap();
    let limits: Arc<dyn LimitStore> = store.clone();
    let client = Arc::new(
        Client::from_integration(
            &integration(&sim)
                .with_setting("threshold_check", 0)
                .sharing_limits(limits.clone()),
        )
        .unwrap(),
    );
    let (user, secret, code) = sim.credentials();
    let zone = client.zone().await.unwrap();
    let key = limits::slot_key(&user, &code, &secret, &zone, "Companies");
    let now = jiff::Timestamp::now().as_millisecond();
    // Another process holds two of the three slots for the next 1.5 s (it then dies).
    for holder in ["other-process:1", "other-process:2"] {
        assert!(
            limits
                .take_slot(&key, 3, holder, now, now + 1_500)
                .await
                .unwrap()
                .is_some()
        );
    }
    let start = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let client = client.clone();
        calls.spawn(async move { client.count("Companies", &[Filter::all()]).await });
    }
    while let Some(r) = calls.join_next().await {
        r.unwrap().unwrap();
    }
    let took = start.elapsed();
    // One slot is left while the other process holds two: the three go one by one (3 × 120
    // ms) unless the foreign slots lapsed first; never three at once.
    assert!(
        took >= Duration::from_millis(340),
        "three requests went together although another process held two slots: {took:?}"
    );
    let last_three: Vec<usize> = sim
        .request_log()
        .iter()
        .rev()
        .take(3)
        .map(|e| e.in_flight)
        .collect();
    assert!(
        last_three.iter().all(|n| *n == 1),
        "one at a time: {last_three:?}"
    );
    assert_eq!(thread_refusals(&sim), 0);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-limits-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    )
}

#[tokio::test]
async fn the_hourly_budget_is_read_from_autotask_and_refused_before_autotask_suspends() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    sim.set_failures(FailureConfig {
        request_threshold: 12,
        ..FailureConfig::default()
    });
    let client = Client::from_integration(&integration(&sim)).unwrap();
    let mut sent = 0;
    let err = loop {
        match client.count("Companies", &[Filter::all()]).await {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 20, "the budget never ran out");
    };
    assert_eq!(err.kind, ErrorKind::BudgetExhausted, "{}", err.message);
    assert!(
        err.message.contains("hourly request budget") && err.message.contains("of 12 requests"),
        "{}",
        err.message
    );
    let log = sim.request_log();
    assert!(
        log.iter()
            .any(|e| e.path.contains("ThresholdInformation") && e.status == 200),
        "ThresholdInformation was read: {log:#?}"
    );
    // weft stopped at the budget: Autotask never had to suspend it.
    assert!(
        log.iter().all(|e| e.status != 500),
        "no request went over the threshold: {log:#?}"
    );
    // The refusal is weft's own: nothing more was sent for it.
    let before = sim.request_log().len();
    let again = client
        .count("Companies", &[Filter::all()])
        .await
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::BudgetExhausted);
    assert_eq!(sim.request_log().len(), before);
}

#[tokio::test]
async fn background_work_is_paced_past_the_threshold_and_normal_work_is_not() {
    let sim = Simulator::start_local(SimConfig::default()).await;
    sim.set_failures(FailureConfig {
        request_threshold: 40,
        ..FailureConfig::default()
    });
    let settings = |i: Integration| {
        i.with_setting("budget_pace_percent", 25)
            .with_setting("budget_pace_max_delay", "150ms")
    };
    let normal = Client::from_integration(&settings(integration(&sim))).unwrap();
    let background = Client::from_integration(&settings(integration(&sim)))
        .unwrap()
        .background();
    let paced = || -> u64 { limits::usage().iter().map(|u| u.paced).sum() };
    // Below a quarter of 40 nothing waits.
    let start = Instant::now();
    for _ in 0..3 {
        background
            .count("Companies", &[Filter::all()])
            .await
            .unwrap();
    }
    assert_eq!(paced(), 0, "paced below the threshold");
    for _ in 0..8 {
        normal.count("Companies", &[Filter::all()]).await.unwrap();
    }
    assert_eq!(paced(), 0, "normal work is never paced");
    let below = start.elapsed();
    let start = Instant::now();
    for _ in 0..3 {
        background
            .count("Companies", &[Filter::all()])
            .await
            .unwrap();
    }
    assert_eq!(paced(), 3);
    assert!(
        start.elapsed() >= Duration::from_millis(450),
        "three paced requests wait 150 ms each: {:?} (unpaced: {below:?})",
        start.elapsed()
    );
    // Pacing began past a quarter of the 40 ThresholdInformation reported, not of the
    // default 10,000: the budget was read from Autotask.
}

struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
