//! Every refusal of `restore-period --apply` is one sentence, exit 15, and leaves the live
//! database byte for byte as it was: a schema that changed since the snapshot, a description
//! naming a column that does not exist, a period the snapshot holds nothing of, a snapshot of
//! another database, and a restored key a different live row holds.

mod common;
use common::period::Setup;
use common::period_schemas::*;
use common::{Env, Run};
use std::path::Path;

/// The live database's bytes, with its WAL if that holds any (a reader of a WAL database may
/// leave an empty one behind, as any SQLite reader does).
fn bytes(db: &Path) -> String {
    let wal = db.with_extension("sqlite-wal");
    let held = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    let wal = if held {
        common::sha256_file(&wal)
    } else {
        String::new()
    };
    format!("{}{wal}", common::sha256_file(db))
}

/// Schema D backed up, with March at +08:00 lost; returns the snapshot id.
fn lost_march(env: &Env, s_db: &Path, business: &str) -> (Setup, String) {
    schema_d(s_db);
    let s = Setup::new(env, "d", s_db, business);
    let snap = s.backup(env);
    let c = rusqlite::Connection::open(s_db).unwrap();
    c.execute_batch(&format!(
        r#"DELETE FROM "order line" WHERE "order" IN (SELECT "id" FROM "order" AS i WHERE {MARCH_D});
           DELETE FROM "order" AS i WHERE {MARCH_D};"#
    ))
    .unwrap();
    (s, snap)
}

#[track_caller]
fn refused(run: Run, words: &str) {
    assert_eq!(run.code, 15, "{}{}", run.stdout, run.stderr);
    let line = run.stderr.trim();
    assert!(line.contains(words), "{line}");
    assert_eq!(line.lines().count(), 1, "one sentence: {line}");
}

fn apply(snap: &str) -> Vec<&str> {
    vec![
        "--from",
        "2024-03",
        "--to",
        "2024-03",
        "--snapshot",
        snap,
        "--apply",
    ]
}

#[test]
fn a_live_schema_that_differs_from_the_snapshot_is_refused() {
    let env = Env::new();
    let db = env.path("d.sqlite");
    let (s, snap) = lost_march(&env, &db, BUSINESS_D);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(r#"ALTER TABLE "order" ADD COLUMN "note" TEXT;"#)
        .unwrap();
    let before = bytes(&db);
    refused(s.period(&env, &apply(&snap)), r#"column "note""#);
    assert_eq!(bytes(&db), before);
}

#[test]
fn a_description_naming_a_missing_column_is_refused() {
    let env = Env::new();
    let db = env.path("d.sqlite");
    let (s, snap) = lost_march(&env, &db, &BUSINESS_D.replace(r#""cents""#, r#""amount""#));
    let before = bytes(&db);
    refused(s.period(&env, &apply(&snap)), r#""amount" is not a column"#);
    assert_eq!(bytes(&db), before);
}

#[test]
fn a_period_the_snapshot_holds_nothing_of_is_refused() {
    let env = Env::new();
    let db = env.path("d.sqlite");
    let (s, snap) = lost_march(&env, &db, BUSINESS_D);
    let before = bytes(&db);
    let run = s.period(
        &env,
        &[
            "--from",
            "2030-01-01",
            "--to",
            "2030-01-31",
            "--snapshot",
            &snap,
            "--apply",
        ],
    );
    refused(run, "holds no invoices from 2030-01-01 to 2030-01-31");
    assert_eq!(bytes(&db), before);
}

#[test]
fn a_snapshot_of_another_database_is_refused() {
    let env = Env::new();
    let db = env.path("d.sqlite");
    let (s, _) = lost_march(&env, &db, BUSINESS_D);
    // Another database of the same schema, backed up to the same repository by path.
    let other = env.path("other.sqlite");
    schema_d(&other);
    let theirs = env.backup_report(other.to_str().unwrap(), &s.repo, &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = bytes(&db);
    refused(s.period(&env, &apply(&theirs)), "not of the live database");
    assert_eq!(bytes(&db), before);
}

#[test]
fn a_restored_key_held_by_a_different_live_row_is_refused_and_nothing_is_inserted() {
    let env = Env::new();
    let db = env.path("d.sqlite");
    let (s, snap) = lost_march(&env, &db, BUSINESS_D);
    // A new order took the id of a lost one, under another number.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            r#"INSERT INTO "order" ("id", "no", "when", "cents") VALUES (1, 'TAKEN', 0, 1);"#,
        )
        .unwrap();
    let before = bytes(&db);
    let shown = s.period(
        &env,
        &["--from", "2024-03", "--to", "2024-03", "--snapshot", &snap],
    );
    assert_eq!(shown.code, 14, "{}", shown.stderr);
    refused(s.period(&env, &apply(&snap)), r#""order" ("id") = (1)"#);
    assert_eq!(bytes(&db), before);
    // No backup was taken for a repair that did not happen.
    let listed = env
        .run(&[
            "snapshots",
            "--repo",
            &s.repo,
            "--identity",
            &s.key,
            "--json",
        ])
        .ok();
    assert_eq!(listed.json().as_array().unwrap().len(), 1);
}

/// The snapshot is read in place from the repository: a damaged pack stops the repair with
/// the pack named (not SQLite's "disk I/O error"), exit 5, and nothing written.
#[test]
fn a_damaged_pack_stops_the_repair_and_says_which() {
    let env = Env::new();
    let db = env.path("d.sqlite");
    let (s, snap) = lost_march(&env, &db, BUSINESS_D);
    // The largest pack holds the pages (the tree segments' packs are small).
    let largest = common::walk(Path::new(&s.repo).join("data").as_path())
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes_of_pack = std::fs::read(&largest).unwrap();
    let middle = bytes_of_pack.len() / 2;
    bytes_of_pack[middle] ^= 0x40;
    std::fs::write(&largest, bytes_of_pack).unwrap();
    let before = bytes(&db);
    let run = s.period(&env, &apply(&snap));
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    let line = run.stderr.trim();
    let pack = largest.file_name().unwrap().to_string_lossy().to_string();
    assert!(line.contains(&pack) && line.contains("damaged"), "{line}");
    assert!(!line.contains("I/O"), "{line}");
    assert_eq!(bytes(&db), before);
}
