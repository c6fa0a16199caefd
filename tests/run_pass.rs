//! `ivault run`: one pass of a policy with two sources and two targets. The first pass does
//! everything once (a full backup in place of the incremental), an immediate second pass
//! finds nothing due (the schedules fire once a year, so no slot falls between the two), `--all` runs everything again with retention keeping its count, and a
//! source that fails does not stop the other.

mod common;
use common::Env;
use invoice_vault::sample::JournalMode;
use serde_json::Value;

struct Setup {
    env: Env,
    policy: String,
    key: String,
    books: std::path::PathBuf,
    shop: std::path::PathBuf,
}

fn setup() -> Setup {
    let env = Env::new();
    let (key, recipient) = env.new_key("k.txt");
    let books = env.database("books.sqlite", 1, JournalMode::Wal);
    let shop = env.database("shop.sqlite", 1, JournalMode::Rollback);
    for t in ["near", "far"] {
        env.run(&[
            "init",
            env.path(t).to_str().unwrap(),
            "--recipient",
            &recipient,
        ])
        .ok();
    }
    let policy = env.path("p.toml");
    std::fs::write(
        &policy,
        format!(
            r#"[[source]]
name = "books"
path = {books:?}
[source.business]
invoice_table = "invoices"
date_column = "issue_date"
amount_column = "total_cents"
key_columns = ["invoice_code", "invoice_no"]
children = [{{ table = "invoice_items", fk = "invoice_id" }}]
[[source]]
name = "shop"
path = {shop:?}
[[target]]
name = "near"
url = {:?}
[[target]]
name = "far"
url = {:?}
[encryption]
recipients = ["{recipient}"]
identity_file = {key:?}
[schedule]
incremental = "0 0 1 1 *"
full = "0 0 1 1 *"
drill = "0 0 1 1 *"
[retention]
keep_last = 2
"#,
            env.path("near"),
            env.path("far")
        ),
    )
    .unwrap();
    Setup {
        policy: policy.to_str().unwrap().to_string(),
        env,
        key,
        books,
        shop,
    }
}

impl Setup {
    fn pass(&self, extra: &[&str]) -> common::Run {
        let mut args = vec!["run", "--policy", &self.policy, "--json"];
        args.extend_from_slice(extra);
        self.env.run(&args)
    }

    fn snapshots(&self, target: &str, source: &str) -> usize {
        let v: Value = self
            .env
            .run(&[
                "snapshots",
                "--repo",
                self.env.path(target).to_str().unwrap(),
                "--identity",
                &self.key,
                "--source",
                source,
                "--json",
            ])
            .ok()
            .json();
        v.as_array().unwrap().len()
    }
}

/// (source, job, target) of every job, in order.
fn jobs(v: &Value) -> Vec<(String, String, String)> {
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            assert_eq!(j["ok"], true, "{j}");
            (
                j["source"].as_str().unwrap().to_string(),
                j["job"].as_str().unwrap().to_string(),
                j["target"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn t(s: &str, j: &str, target: &str) -> (String, String, String) {
    (s.into(), j.into(), target.into())
}

#[test]
fn a_first_pass_does_everything_once_and_a_second_finds_nothing_due() {
    let s = setup();
    let first = s.pass(&[]).ok().json();
    assert_eq!(
        jobs(&first),
        // Every backup first (together, one batch per target), then the drills, retention
        // and prunes.
        vec![
            t("books", "full", ""),
            t("shop", "full", ""),
            t("books", "drill", "near"),
            t("books", "drill", "far"),
            t("shop", "drill", "near"),
            t("shop", "drill", "far"),
            t("books", "retention", "near"),
            t("books", "retention", "far"),
            t("shop", "retention", "near"),
            t("shop", "retention", "far"),
            t("", "prune", "near"),
            t("", "prune", "far"),
        ]
    );
    for target in ["near", "far"] {
        for source in ["books", "shop"] {
            assert_eq!(s.snapshots(target, source), 1, "{source} on {target}");
        }
    }
    let second = s.env.run(&["run", "--policy", &s.policy]).ok();
    assert_eq!(second.stdout.trim(), "nothing is due");

    // --all runs everything again; retention keeps the two newest of each source, and the
    // prune after it marks what the forgotten snapshots alone used. The databases are made
    // anew before each pass, so the first pass's packs (which both sources share) end up used
    // by forgotten snapshots only.
    let mut marked = 0;
    for pass in 0..2 {
        for (db, mode) in [
            (&s.books, JournalMode::Wal),
            (&s.shop, JournalMode::Rollback),
        ] {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            let opts = invoice_vault::sample::GenerateOptions {
                size_mb: 1,
                seed: 100 + pass,
                journal_mode: mode,
            };
            invoice_vault::sample::generate(db, &opts).unwrap();
        }
        let again = s.pass(&["--all"]).ok().json();
        assert_eq!(jobs(&again).len(), 12);
        assert_eq!(again["jobs"][0]["job"], "incremental");
        let prunes = again["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["job"] == "prune");
        for p in prunes {
            let summary = p["summary"].as_str().unwrap();
            let n: usize = summary
                .split("marked ")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            marked += n;
        }
    }
    assert!(marked > 0, "the prunes marked nothing");
    for target in ["near", "far"] {
        for source in ["books", "shop"] {
            assert_eq!(s.snapshots(target, source), 2, "{source} on {target}");
        }
    }
}

#[test]
fn a_failing_source_does_not_stop_the_other() {
    let s = setup();
    std::fs::remove_file(&s.shop).unwrap();
    let r = s.pass(&[]);
    assert_eq!(r.code, 8, "{}", r.stderr);
    let v = r.json();
    let shop_backup = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["source"] == "shop" && j["job"] == "full")
        .unwrap();
    assert_eq!(shop_backup["ok"], false);
    assert_eq!(shop_backup["exit_code"], 3);
    assert_eq!(s.snapshots("near", "books"), 1);
    assert_eq!(s.snapshots("far", "books"), 1);
}

#[test]
fn a_source_goes_only_to_the_targets_it_names() {
    let s = setup();
    let text = std::fs::read_to_string(&s.policy).unwrap();
    let shop_path = format!("path = {:?}\n", s.shop);
    assert!(text.contains(&shop_path));
    let text = text.replace(&shop_path, &format!("{shop_path}targets = [\"far\"]\n"));
    std::fs::write(&s.policy, text).unwrap();
    let v = s.pass(&[]).ok().json();
    let shop: Vec<(String, String, String)> =
        jobs(&v).into_iter().filter(|j| j.0 == "shop").collect();
    assert_eq!(
        shop,
        vec![
            t("shop", "full", ""),
            t("shop", "drill", "far"),
            t("shop", "retention", "far"),
        ]
    );
    assert_eq!(s.snapshots("far", "shop"), 1);
    assert_eq!(s.snapshots("near", "shop"), 0);
    assert_eq!(s.snapshots("near", "books"), 1);
}
