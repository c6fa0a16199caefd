//! Restore drills end to end, with the real binary: a good snapshot passes every check (local
//! and S3, with and without a business description, on two different schemas); each kind of
//! damage fails the drill and names the failing check and object; live drift and numbering
//! gaps are reported with the months, counts, amounts and numbers that an independent count
//! of the database gives.

mod common;
use common::damaged;
use common::ledger;
use common::moto::Moto;
use common::{Env, Run, DEMO_BUSINESS};
use invoice_vault::sample::JournalMode;
use rusqlite::Connection;
use serde_json::Value;
use std::path::Path;

const DRILL_FAILED: i32 = 11;

struct Setup {
    env: Env,
    key: String,
    repo: String,
    db: std::path::PathBuf,
    policy: String,
}

/// A sample database, a local repository and a policy naming both, the key and the business
/// description; one backup through the policy.
fn setup(business: &str) -> Setup {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("books.sqlite", 3, JournalMode::Wal);
    let policy = env.path("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[source]]\nname = \"books\"\npath = {:?}\n{business}\n[[target]]\nname = \"local\"\nurl = {:?}\n[encryption]\nidentity_file = {:?}\n",
            db, repo, key
        ),
    )
    .unwrap();
    let s = Setup {
        env,
        key,
        repo,
        db,
        policy: policy.to_str().unwrap().to_string(),
    };
    s.backup();
    s
}

impl Setup {
    fn backup(&self) {
        self.env
            .run(&["backup", "books", "--policy", &self.policy])
            .ok();
    }

    fn drill(&self, extra: &[&str]) -> Run {
        let mut args = vec!["drill", "books", "--policy", &self.policy, "--json"];
        args.extend_from_slice(extra);
        self.env.run(&args)
    }
}

/// The checks of one kind.
fn checks<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .collect()
}

/// Every check that did not pass or was skipped, as (kind, subject).
fn failed(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "failed")
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["subject"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Invoices and total of each month, counted straight from the database.
fn months_of(db: &Path) -> Vec<(String, i64, i64)> {
    let c = Connection::open(db).unwrap();
    let mut stmt = c
        .prepare("SELECT substr(issue_date, 1, 7), count(*), sum(total_cents) FROM invoices GROUP BY 1 ORDER BY 1")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows
}

fn table_names(db: &Path) -> Vec<String> {
    let c = Connection::open(db).unwrap();
    let mut stmt = c
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    let names = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names
}

/// Scratch directories of drills left in the state directory.
fn scratch_left(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.path("state"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("drill-"))
        .collect()
}

#[test]
fn a_good_snapshot_passes_every_check_and_the_month_table_matches_the_database() {
    let s = setup(DEMO_BUSINESS);
    let r = s.drill(&[]).ok().json();
    assert_eq!(r["verdict"], "passed", "{r:#}");
    assert_eq!(failed(&r), Vec::<(String, String)>::new());
    for kind in [
        "snapshot",
        "objects",
        "sha256",
        "source_check",
        "integrity_check",
        "foreign_key_check",
    ] {
        let c = checks(&r, kind);
        assert_eq!(c.len(), 1, "{kind}");
        assert_eq!(c[0]["status"], "passed", "{kind}: {:#}", c[0]);
    }
    // One row count per table, each equal to the table's rows.
    let counted: Vec<String> = checks(&r, "row_count")
        .iter()
        .map(|c| c["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(counted, table_names(&s.db));
    // Every month of the database, with its count and total.
    let months = months_of(&s.db);
    assert!(months.len() > 12, "{months:?}");
    let rows = r["months"].as_array().unwrap();
    assert_eq!(rows.len(), months.len());
    for ((month, n, total), row) in months.iter().zip(rows) {
        assert_eq!(row["month"], month.as_str());
        assert_eq!(row["expected_invoices"], *n);
        assert_eq!(row["actual_invoices"], *n);
        assert_eq!(row["expected_total"], *total);
        assert_eq!(row["ok"], true);
    }
    assert_eq!(checks(&r, "invoices_per_month").len(), months.len());
    assert_eq!(checks(&r, "child_rows").len(), 2);
    assert!(r["rto"]["actual_ms"].as_u64().unwrap() > 0);
    assert!(r["bytes_read"].as_u64().unwrap() > 0);
    assert_eq!(scratch_left(&s.env), Vec::<String>::new());

    // The history has the drill, and a second drill charts both.
    let again = s.drill(&[]).ok().json();
    let history = again["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["drill"], r["id"]);
    assert_eq!(history[1]["drill"], again["id"]);
    let jobs = s.env.run(&["history", "--json"]).ok().json();
    assert_eq!(jobs[0]["kind"], "drill");
    assert_eq!(jobs[0]["outcome"], "ok");
    let listed = s.env.run(&["history", "--drills", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["id"], again["id"]);
    assert_eq!(listed[0]["verdict"], "passed");
}

#[test]
fn without_a_business_description_rows_of_every_table_are_checked() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("plain.sqlite", 2, JournalMode::Rollback);
    let dbs = db.to_str().unwrap();
    env.backup_report(dbs, &repo, &[]);
    let r = env
        .run(&[
            "drill",
            dbs,
            "--repo",
            &repo,
            "--identity",
            &key,
            "--json",
            "--keep",
        ])
        .ok()
        .json();
    assert_eq!(r["verdict"], "passed", "{r:#}");
    assert_eq!(checks(&r, "row_count").len(), table_names(&db).len());
    assert!(checks(&r, "invoices_per_month").is_empty());
    assert_eq!(r["months"], serde_json::json!([]));
    // --keep leaves the restored copy, equal to the database.
    let kept = scratch_left(&env);
    assert_eq!(kept.len(), 1);
    let copy = env.path("state").join(&kept[0]).join("restored.sqlite");
    assert_eq!(common::sha256_file(&copy), common::sha256_file(&db));
}

#[test]
fn a_drill_from_s3_passes() {
    let moto = Moto::start();
    moto.bucket("drills", false);
    let env = Env::with_vars(moto.env());
    let (key, recipient) = env.new_key("k.txt");
    env.run(&["init", "s3://drills/r", "--recipient", &recipient])
        .ok();
    let db = env.database("s3.sqlite", 2, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    env.backup_report(dbs, "s3://drills/r", &[]);
    let r = env
        .run(&[
            "drill",
            dbs,
            "--repo",
            "s3://drills/r",
            "--identity",
            &key,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["verdict"], "passed", "{r:#}");
    assert_eq!(r["target"], "s3://drills/r");
}

#[test]
fn a_second_schema_drills_with_its_own_description() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.path("ledger.sqlite");
    let expected = ledger::create(&db);
    let policy = env.path("ledger.toml");
    std::fs::write(
        &policy,
        format!(
            "[[source]]\nname = \"ledger\"\npath = {db:?}\n{}\n[[target]]\nname = \"local\"\nurl = {repo:?}\n[encryption]\nidentity_file = {key:?}\n",
            ledger::BUSINESS
        ),
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    env.run(&["backup", "ledger", "--policy", p]).ok();
    let r = env
        .run(&["drill", "ledger", "--policy", p, "--json"])
        .ok()
        .json();
    assert_eq!(r["verdict"], "passed", "{r:#}");
    let rows = r["months"].as_array().unwrap();
    let got: Vec<(String, u64, f64)> = rows
        .iter()
        .map(|m| {
            (
                m["month"].as_str().unwrap().to_string(),
                m["actual_invoices"].as_u64().unwrap(),
                m["actual_total"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for ((m, n, t), (em, en, et)) in got.iter().zip(&expected) {
        assert_eq!((m, n), (em, en));
        assert!((t - et).abs() < 1e-6, "{m}: {t} != {et}");
    }
    assert_eq!(checks(&r, "child_rows").len(), 2);
}

/// Drills the full snapshot of a damaged repository.
fn drill_damaged(d: &damaged::Damaged, key: &str) -> Value {
    let r = d.env.run(&[
        "drill",
        d.db.to_str().unwrap(),
        "--repo",
        &d.repo,
        "--identity",
        key,
        "--snapshot",
        &d.full,
        "--json",
    ]);
    assert_eq!(r.code, DRILL_FAILED, "{}\n{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["verdict"], "failed");
    v
}

/// The id in a pack's or index's path.
fn object_id(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn a_flipped_byte_in_a_pack_fails_the_objects_check_naming_the_pack() {
    let d = damaged::repository();
    let pack = d.biggest_pack();
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&pack, bytes).unwrap();
    let r = drill_damaged(&d, &d.key);
    assert_eq!(failed(&r), vec![("objects".to_string(), object_id(&pack))]);
    let c = checks(&r, "objects")[0];
    assert!(
        c["detail"].as_str().unwrap().contains(&object_id(&pack)),
        "{c:#}"
    );
    assert_eq!(checks(&r, "integrity_check")[0]["status"], "skipped");
}

#[test]
fn a_missing_pack_fails_the_objects_check_naming_the_pack() {
    let d = damaged::repository();
    let pack = d.biggest_pack();
    std::fs::remove_file(&pack).unwrap();
    let r = drill_damaged(&d, &d.key);
    assert_eq!(failed(&r), vec![("objects".to_string(), object_id(&pack))]);
}

#[test]
fn a_truncated_index_is_named_and_fails_the_objects_check() {
    let d = damaged::repository();
    for index in &d.full_indexes {
        let bytes = std::fs::read(index).unwrap();
        std::fs::write(index, &bytes[..bytes.len() / 2]).unwrap();
    }
    let r = drill_damaged(&d, &d.key);
    let objects = checks(&r, "objects");
    let failures: Vec<_> = objects.iter().filter(|c| c["status"] == "failed").collect();
    assert_eq!(failures.len(), 1, "{objects:#?}");
    let truncated: Vec<String> = d.full_indexes.iter().map(|p| object_id(p)).collect();
    assert!(
        truncated.contains(&failures[0]["subject"].as_str().unwrap().to_string()),
        "{failures:#?}"
    );
    for index in &d.full_indexes {
        let id = object_id(index);
        assert!(
            objects
                .iter()
                .any(|c| c["status"] == "warning" && c["detail"].as_str().unwrap().contains(&id)),
            "index {id} not named: {objects:#?}"
        );
    }
}

#[test]
fn a_wrong_identity_fails_the_snapshot_check() {
    let d = damaged::repository();
    let (other, _) = d.env.new_key("other.txt");
    let r = drill_damaged(&d, &other);
    assert_eq!(failed(&r), vec![("snapshot".to_string(), String::new())]);
    let detail = checks(&r, "snapshot")[0]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("identity") || detail.contains("key"),
        "{detail}"
    );
    assert!(!detail.contains("AGE-SECRET-KEY"), "{detail}");
}

#[test]
fn a_source_with_a_broken_foreign_key_fails_only_foreign_key_check() {
    let s = setup(DEMO_BUSINESS);
    {
        let c = Connection::open(&s.db).unwrap();
        c.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO tax_uploads (invoice_id, uploaded_at, status, response_code, payload_sha256)
             VALUES (987654321, '2024-01-01', 'ok', '0000', 'x');",
        )
        .unwrap();
    }
    s.backup();
    let r = s.drill(&[]);
    assert_eq!(r.code, DRILL_FAILED, "{}", r.stderr);
    let r = r.json();
    assert_eq!(
        failed(&r),
        vec![("foreign_key_check".to_string(), "tax_uploads".to_string())]
    );
    let c = checks(&r, "foreign_key_check")[0];
    assert_eq!(c["actual"], "1 violations");
    // The job history says the drill failed, and why.
    let jobs = s.env.run(&["history", "--json"]).ok().json();
    assert_eq!(jobs[0]["kind"], "drill");
    assert_eq!(jobs[0]["outcome"], "failed");
    assert_eq!(
        jobs[0]["error"],
        format!("drill {}: 1 checks failed", r["id"])
    );
}

#[test]
fn recorded_totals_that_differ_from_the_restored_data_fail_that_month() {
    use invoice_vault::repo::{codec, keys, manifest, signing::SigningKey};
    let s = setup(DEMO_BUSINESS);
    let list = s
        .env
        .run(&[
            "snapshots",
            "--repo",
            &s.repo,
            "--identity",
            &s.key,
            "--json",
        ])
        .ok()
        .json();
    let id = list[0]["id"].as_str().unwrap().to_string();
    // The backup host rewrites its own manifest with a wrong total and signs it again: the
    // signature is valid, the facts are not.
    let repo = Path::new(&s.repo);
    let keyring = keys::load_identity(Path::new(&s.key)).unwrap();
    let sealed = std::fs::read(repo.join("snapshots").join(&id)).unwrap();
    let plain = codec::unseal(&keyring, &sealed).unwrap();
    let (mut m, _) = manifest::decode(&plain).unwrap();
    let facts = m.business.as_mut().unwrap();
    let month = facts.months[3].month.clone();
    facts.months[3].total = invoice_vault::facts::Amount::Integer(1);
    let key = SigningKey::load(&s.env.path("state").join("signing.key")).unwrap();
    let plain = manifest::encode(&m, Some(&key)).unwrap();
    let recipient = keyring.recipients().remove(0);
    let forged = codec::Sealer::new(&[recipient])
        .unwrap()
        .seal(&plain, 3)
        .unwrap();
    let forged_id = hex::encode(invoice_vault::hash::sha256(&forged));
    std::fs::write(repo.join("snapshots").join(&forged_id), forged).unwrap();

    let r = s.drill(&["--snapshot", &forged_id]);
    assert_eq!(r.code, DRILL_FAILED, "{}", r.stderr);
    let r = r.json();
    assert_eq!(
        failed(&r),
        vec![("invoices_per_month".to_string(), month.clone())]
    );
    let row = r["months"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["month"] == month.as_str())
        .unwrap();
    assert_eq!(row["ok"], false);
    assert_eq!(row["expected_total"], 1);
}

#[test]
fn a_closed_month_deleted_from_the_live_database_is_named_with_its_count_and_amount() {
    let s = setup(DEMO_BUSINESS);
    let month = "2024-03";
    let (n, total) = months_of(&s.db)
        .into_iter()
        .find(|(m, _, _)| m == month)
        .map(|(_, n, t)| (n, t))
        .unwrap();
    assert_eq!(
        s.drill(&["--compare-live"]).ok().json()["verdict"],
        "passed"
    );
    {
        let c = Connection::open(&s.db).unwrap();
        c.execute_batch(&format!(
            "DELETE FROM invoice_items WHERE invoice_id IN (SELECT id FROM invoices WHERE issue_date LIKE '{month}%');
             DELETE FROM tax_uploads WHERE invoice_id IN (SELECT id FROM invoices WHERE issue_date LIKE '{month}%');
             DELETE FROM invoices WHERE issue_date LIKE '{month}%';"
        ))
        .unwrap();
    }
    let r = s.drill(&["--compare-live"]);
    assert_eq!(r.code, DRILL_FAILED, "{}", r.stderr);
    let r = r.json();
    assert_eq!(
        failed(&r),
        vec![("live_drift".to_string(), month.to_string())]
    );
    let c = checks(&r, "live_drift")[0];
    assert_eq!(
        c["detail"],
        format!("closed month {month} changed in the live database: {n} invoices missing, 0 extra, amount difference {}", -total)
    );
    let row = r["months"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["month"] == month)
        .unwrap();
    assert_eq!(row["live"]["missing"], n);
    assert_eq!(row["live"]["amount_difference"], -total);
    assert_eq!(row["ok"], false);
}

#[test]
fn numbers_deleted_in_the_middle_of_a_series_are_listed() {
    let s = setup(DEMO_BUSINESS);
    let c = Connection::open(&s.db).unwrap();
    let (series, numbers): (String, Vec<String>) = {
        let series: String = c
            .query_row(
                "SELECT invoice_code FROM invoices GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let numbers: Vec<String> = c
            .prepare("SELECT invoice_no FROM invoices WHERE invoice_code = ?1 ORDER BY invoice_no")
            .unwrap()
            .query_map([&series], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        (series, numbers)
    };
    // Before: the demo numbers every series without gaps.
    assert_eq!(checks(&s.drill(&[]).ok().json(), "numbering_gaps").len(), 0);
    let mid = numbers.len() / 2;
    let gone = [&numbers[mid], &numbers[mid + 1], &numbers[mid + 4]];
    for no in gone {
        c.execute_batch(&format!(
            "DELETE FROM invoice_items WHERE invoice_id IN (SELECT id FROM invoices WHERE invoice_code = '{series}' AND invoice_no = '{no}');
             DELETE FROM tax_uploads WHERE invoice_id IN (SELECT id FROM invoices WHERE invoice_code = '{series}' AND invoice_no = '{no}');
             DELETE FROM invoices WHERE invoice_code = '{series}' AND invoice_no = '{no}';"
        ))
        .unwrap();
    }
    s.backup();
    let r = s.drill(&[]).ok().json();
    assert_eq!(r["verdict"], "passed");
    let gaps = checks(&r, "numbering_gaps");
    assert_eq!(gaps.len(), 1, "{gaps:#?}");
    assert_eq!(gaps[0]["status"], "warning");
    assert_eq!(gaps[0]["subject"], series.as_str());
    let listed: Vec<String> = gone
        .iter()
        .map(|n| n.parse::<i64>().unwrap().to_string())
        .collect();
    assert_eq!(
        gaps[0]["detail"],
        format!(
            "3 numbers missing in series {series}: {}",
            listed.join(", ")
        )
    );
}

#[test]
fn an_unknown_source_name_in_the_policy_is_refused() {
    let s = setup(DEMO_BUSINESS);
    let r = s.env.run(&["drill", "bokos", "--policy", &s.policy]);
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(r.stderr.contains("did you mean books?"), "{}", r.stderr);
}

#[test]
fn bad_drill_arguments_are_refused_with_one_sentence_and_nothing_left() {
    let s = setup("");
    let db = s.db.to_str().unwrap();
    // No target: neither --repo nor a policy.
    let r = s.env.run(&["drill", db]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "ivault: give at least one --repo TARGET to drill (a directory, s3://bucket/prefix, or a target of the --policy)"
    );
    // A snapshot that is no id.
    let r = s.env.run(&[
        "drill",
        "books",
        "--policy",
        &s.policy,
        "--snapshot",
        "yesterday",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "ivault: --snapshot \"yesterday\" is not latest, random or a snapshot id"
    );
    // A scratch directory that cannot be made (a file is in the way).
    let blocker = s.env.path("blocker");
    std::fs::write(&blocker, b"x").unwrap();
    let r = s.env.run(&[
        "drill",
        "books",
        "--policy",
        &s.policy,
        "--scratch-dir",
        blocker.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cannot create the drill's scratch directory"),
        "{}",
        r.stderr
    );
    // An id no snapshot has: the drill runs and fails its snapshot check.
    let r = s.drill(&["--snapshot", "abcdef12"]);
    assert_eq!(r.code, DRILL_FAILED, "{}", r.stderr);
    assert_eq!(
        failed(&r.json()),
        vec![("snapshot".to_string(), String::new())]
    );
    assert_eq!(scratch_left(&s.env), Vec::<String>::new());
}

#[test]
fn a_source_name_without_a_policy_compares_the_path_the_snapshot_recorded() {
    let s = setup(DEMO_BUSINESS);
    let args = [
        "drill",
        "books",
        "--repo",
        &s.repo,
        "--identity",
        &s.key,
        "--compare-live",
        "--json",
    ];
    let r = s.env.run(&args).ok().json();
    let live = checks(&r, "live_drift");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["status"], "passed");
    // The live database moved away: the comparison fails and says where it looked.
    let moved = s.env.path("moved.sqlite");
    std::fs::rename(&s.db, &moved).unwrap();
    let r = s.env.run(&args);
    assert_eq!(r.code, DRILL_FAILED, "{}", r.stderr);
    let r = r.json();
    assert_eq!(failed(&r), vec![("live_drift".to_string(), String::new())]);
    let detail = checks(&r, "live_drift")[0]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    let recorded = std::fs::canonicalize(s.env.path("."))
        .unwrap()
        .join("books.sqlite");
    assert_eq!(
        detail,
        format!(
            "the live database {} is not on this host; drill on the host that has it",
            recorded.display()
        )
    );
}

#[test]
fn reports_are_written_beside_the_drill_and_rendered_again_from_the_history() {
    let s = setup(DEMO_BUSINESS);
    let dir = s.env.path("reports");
    let r = s
        .drill(&["--report-dir", dir.to_str().unwrap()])
        .ok()
        .json();
    let id = r["id"].as_i64().unwrap();
    for ext in ["md", "json", "html"] {
        assert!(dir.join(format!("drill-{id}.{ext}")).is_file(), "{ext}");
    }
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("drill-{id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(written, r);
    // The history renders the same report again, in any format and language.
    let again = s
        .env
        .run(&["report", "--drill", &id.to_string(), "--format", "json"])
        .ok()
        .json();
    assert_eq!(again, r);
    let html = s.env.path("zh.html");
    s.env
        .run(&[
            "report",
            "--format",
            "html",
            "--lang",
            "zh-CN",
            "--out",
            html.to_str().unwrap(),
        ])
        .ok();
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.contains("lang=\"zh-CN\""));
    assert!(text.contains(r["snapshot"]["id"].as_str().unwrap()));
    let md = s.env.run(&["report", "--last", "1"]).ok().stdout;
    assert!(md.starts_with("# "), "{md}");
    // Bad requests are usage errors.
    let r = s.env.run(&["report", "--drill", "999"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "ivault: no drill 999 in the history; `ivault history --drills` lists them"
    );
    let r = s.env.run(&["report", "--format", "pdf"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("unknown report format \"pdf\": expected md, json or html"),
        "{}",
        r.stderr
    );
}
