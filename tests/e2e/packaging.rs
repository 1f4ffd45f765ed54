//! The container packaging: `compose.yaml` and `Containerfile` have what operators rely on
//! (checked by reading them), and, when a container engine with compose is installed,
//! `compose config` accepts the file.

use std::path::Path;
use std::process::Command;

use serde_yaml::Value;

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compose() -> Value {
    let mut v: Value =
        serde_yaml::from_str(&repo_file("compose.yaml")).expect("compose.yaml is YAML");
    // The weft services share their settings through YAML anchors and merge keys.
    v.apply_merge().expect("merge keys");
    v
}

#[test]
fn compose_runs_postgres_a_server_and_two_workers_sharing_it() {
    let v = compose();
    let services = v["services"].as_mapping().expect("services");
    let service = |name: &str| &v["services"][name];
    let pg = service("postgres");
    assert!(pg["image"].as_str().is_some_and(|i| i.contains("postgres")));
    assert!(
        pg["healthcheck"]["test"].is_sequence(),
        "postgres healthcheck"
    );
    assert!(
        pg["volumes"][0]
            .as_str()
            .is_some_and(|v| v.ends_with(":/var/lib/postgresql/data"))
    );
    assert!(v["volumes"]["postgres-data"].is_null() || v["volumes"]["postgres-data"].is_mapping());

    let serve = service("serve");
    assert_eq!(serve["command"][0], "serve");
    assert!(
        serve["healthcheck"]["test"]
            .as_sequence()
            .is_some_and(|t| t.iter().any(|a| a == "healthcheck"))
    );
    assert!(
        serve["ports"][0]
            .as_str()
            .is_some_and(|p| p.ends_with(":8080"))
    );
    let workers: Vec<&Value> = services
        .iter()
        .filter(|(_, s)| s["command"][0] == "worker")
        .map(|(_, s)| s)
        .collect();
    assert_eq!(workers.len(), 2, "two `weft worker` services");

    // Every weft process: the same database, the same secret key, after PostgreSQL is healthy.
    for s in workers.iter().copied().chain([serve]) {
        let url = s["environment"]["WEFT_DATABASE_URL"]
            .as_str()
            .unwrap_or_default();
        assert!(
            url.starts_with("postgres://") && url.contains("@postgres:5432/"),
            "{url}"
        );
        assert!(s["environment"]["WEFT_SECRET_KEY"].is_string());
        assert_eq!(s["depends_on"]["postgres"]["condition"], "service_healthy");
    }
    assert!(serve["environment"]["WEFT_API_TOKEN"].is_string());
}

#[test]
fn the_containerfile_builds_in_stages_and_runs_unprivileged_with_a_health_check() {
    let text = repo_file("Containerfile");
    // Instructions, without comments and with continuation lines joined.
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let instructions: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let of = |word: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(word))
            .copied()
            .collect()
    };
    let froms = of("FROM");
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(
        froms[0].contains(" AS "),
        "the build stage is named: {}",
        froms[0]
    );
    assert!(
        of("COPY").iter().any(|c| c.contains("--from=")),
        "the runtime copies from the build stage"
    );
    let user = of("USER");
    let last_user = user.last().expect("a USER instruction");
    assert!(
        !last_user.ends_with(" root") && !last_user.ends_with(" 0"),
        "{last_user}"
    );
    assert!(
        of("HEALTHCHECK").iter().any(|h| h.contains("/healthz")),
        "HEALTHCHECK on /healthz"
    );
    assert!(
        of("VOLUME").iter().any(|v| v.contains("/data")),
        "VOLUME /data"
    );
    assert!(
        of("EXPOSE").iter().any(|e| e.contains("8080")),
        "EXPOSE 8080"
    );
    assert!(
        of("ENV")
            .iter()
            .any(|e| e.contains("WEFT_DATABASE_URL=sqlite:///data/weft.db")),
        "the database on the volume"
    );
}

/// `docker compose config` (or podman's) accepts compose.yaml; skipped (saying so) without a
/// container engine that has compose — not a service the tests require.
#[test]
fn a_container_engine_accepts_compose_yaml() {
    let root = env!("CARGO_MANIFEST_DIR");
    let engine = ["docker", "podman"].into_iter().find(|e| {
        Command::new(e)
            .args(["compose", "version"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(engine) = engine else {
        eprintln!("skipped: neither `docker compose` nor `podman compose` is installed");
        return;
    };
    let out = Command::new(engine)
        .args(["compose", "-f", "compose.yaml", "config", "--quiet"])
        .current_dir(root)
        .env("POSTGRES_PASSWORD", "test")
        .env("WEFT_SECRET_KEY", "test")
        .env("WEFT_API_TOKEN", "test")
        .output()
        .expect("compose runs");
    assert!(
        out.status.success(),
        "{engine} compose config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
