//! `ivault status` as a monitoring probe: healthy after a backup and a passing drill, exit 12
//! with one sentence per problem when a target was never backed up or a drill failed, and
//! Prometheus metrics written whole.

mod common;
use common::Env;
use invoice_vault::sample::JournalMode;

const STALE: i32 = 12;

struct Setup {
    env: Env,
    policy: String,
    db: std::path::PathBuf,
}

/// A policy with one source and two local targets; `targets` of them exist as repositories.
fn setup() -> Setup {
    let env = Env::new();
    let (key, recipient) = env.new_key("k.txt");
    let db = env.database("shop.sqlite", 1, JournalMode::Wal);
    for name in ["near", "far"] {
        let r = env.path(name);
        env.run(&["init", r.to_str().unwrap(), "--recipient", &recipient])
            .ok();
    }
    let policy = env.path("p.toml");
    std::fs::write(
        &policy,
        format!(
            "[[source]]\nname = \"shop\"\npath = {:?}\n[[target]]\nname = \"near\"\nurl = {:?}\n[[target]]\nname = \"far\"\nurl = {:?}\n[encryption]\nidentity_file = {key:?}\n",
            db,
            env.path("near"),
            env.path("far")
        ),
    )
    .unwrap();
    Setup {
        policy: policy.to_str().unwrap().to_string(),
        env,
        db,
    }
}

impl Setup {
    fn run(&self, args: &[&str]) -> common::Run {
        let mut all = args.to_vec();
        all.extend(["--policy", &self.policy]);
        self.env.run(&all)
    }
}

/// Every sample line of a Prometheus text file, as (series with labels, value).
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series and value");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

#[test]
fn healthy_after_backups_and_a_passing_drill_with_metrics() {
    let s = setup();
    s.run(&["backup", "shop"]).ok();
    s.run(&["drill", "shop", "--repo", "near"]).ok();
    let metrics = s.env.path("m.prom");
    let r = s.run(&[
        "status",
        "--json",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    let v = r.ok().json();
    assert_eq!(v["healthy"], true, "{v:#}");
    let lines = v["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    for l in lines {
        assert_eq!(l["source"], "shop");
        assert!(l["last_backup"]["bytes_stored"].as_u64().unwrap() > 0);
        assert_eq!(l["problems"], serde_json::json!([]));
    }
    let near = lines.iter().find(|l| l["target"] == "near").unwrap();
    assert_eq!(near["last_drill"]["verdict"], "passed");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let got = samples(&text);
    assert!(
        got.contains(&(
            "ivault_healthy{source=\"shop\",target=\"near\"}".into(),
            1.0
        )),
        "{text}"
    );
    assert!(got.contains(&(
        "ivault_drill_last_passed{source=\"shop\",target=\"near\"}".into(),
        1.0
    )));
    assert!(!text.contains("ivault_drill_last_passed{source=\"shop\",target=\"far\"}"));
    // No temporary file is left beside it.
    let left: Vec<_> = std::fs::read_dir(s.env.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".ivault-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_target_never_backed_up_and_a_failed_drill_are_problems() {
    let s = setup();
    s.run(&["backup", "shop", "--to", "near"]).ok();
    let r = s.run(&["status"]);
    assert_eq!(r.code, STALE, "{}", r.stdout);
    assert!(
        r.stdout.contains("PROBLEM  shop on far: last backup never"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("never backed up successfully"),
        "{}",
        r.stdout
    );

    s.run(&["backup", "shop", "--to", "far"]).ok();
    assert_eq!(s.run(&["status"]).code, 0);
    // A drill that fails (an orphan row in a child table) makes its line a problem.
    let c = rusqlite::Connection::open(&s.db).unwrap();
    c.execute_batch(
        "PRAGMA foreign_keys = OFF; INSERT INTO invoice_items (invoice_id, line_no, description, quantity, unit_price_cents, amount_cents, tax_rate_bp, tax_cents) VALUES (99999999, 1, 'x', 1, 1, 1, 0, 0);",
    )
    .unwrap();
    s.run(&["backup", "shop", "--to", "near"]).ok();
    assert_eq!(s.run(&["drill", "shop", "--repo", "near"]).code, 11);
    let v = s.run(&["status", "--json"]).json();
    assert_eq!(v["healthy"], false);
    let near = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["target"] == "near")
        .unwrap()
        .clone();
    let problems = near["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let id = near["last_drill"]["id"].as_i64().unwrap();
    assert!(problems[0].as_str().unwrap().ends_with(&format!(
        "drill {id}) failed; ivault report --drill {id} says why"
    )));
}
