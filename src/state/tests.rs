//! The state database against real SQLite files, including ones left by older and newer builds:
//! a host's pins and caches must survive upgrades, and an older binary must not touch newer data.

use super::schema::LATEST;
use super::{CachedPack, JobRecord, State};
use crate::error::Error;
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The tables as builds before schema versioning created them (they set no user_version, so
/// their databases read as version 0). Frozen here on purpose: adopting such a database must keep working whatever
/// later migrations do.
const SCHEMA_V0: &str = "
    CREATE TABLE IF NOT EXISTS repos (
      repo_id TEXT PRIMARY KEY, location TEXT NOT NULL,
      recipients TEXT NOT NULL, pinned_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS packs (
      repo_id TEXT NOT NULL, pack_id TEXT NOT NULL, blobs BLOB NOT NULL,
      PRIMARY KEY (repo_id, pack_id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS last_snapshots (
      repo_id TEXT NOT NULL, source TEXT NOT NULL, snapshot_id TEXT NOT NULL,
      PRIMARY KEY (repo_id, source));
    CREATE TABLE IF NOT EXISTS copies (
      to_repo_id TEXT NOT NULL, from_snapshot_id TEXT NOT NULL,
      to_snapshot_id TEXT NOT NULL,
      PRIMARY KEY (to_repo_id, from_snapshot_id));
    CREATE TABLE IF NOT EXISTS jobs (
      id INTEGER PRIMARY KEY, kind TEXT NOT NULL, source TEXT, target TEXT,
      started TEXT NOT NULL, ended TEXT, outcome TEXT NOT NULL DEFAULT 'running',
      bytes_read INTEGER, bytes_stored INTEGER, snapshot_id TEXT, error TEXT);";

const TABLES: [&str; 13] = [
    "copies",
    "damaged_packs",
    "drills",
    "jobs",
    "last_snapshots",
    "packs",
    "period_restores",
    "repos",
    "schedule_runs",
    "schedule_skips",
    "source_names",
    "trusted_signers",
    "unindexed_packs",
];

fn db_path(dir: &Path) -> PathBuf {
    dir.join("state.sqlite")
}

fn user_version(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// Table name and DDL of every table, to compare schemas.
fn schema(conn: &Connection) -> Vec<(String, String)> {
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(|r| r.unwrap()).collect()
}

fn recipients(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn adopts_a_database_of_the_unversioned_schema_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let (h1, h2) = ([1u8; 32], [2u8; 32]);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
        conn.execute_batch(SCHEMA_V0).unwrap();
        conn.execute(
            "INSERT INTO repos VALUES ('r1', '/srv/repo', 'age1aaa\nage1bbb', '2025-01-01T00:00:00.000Z')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO packs VALUES ('r1', 'pack1', ?1)",
            [[h1, h2].concat()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO last_snapshots VALUES ('r1', '/data/invoices.db', 'snap1')",
            [],
        )
        .unwrap();
        conn.execute("INSERT INTO copies VALUES ('r2', 'snap1', 'snap9')", [])
            .unwrap();
        conn.execute(
            "INSERT INTO jobs VALUES (7, 'backup', '/data/invoices.db', '/srv/repo',
               '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:05.000Z', 'ok', 100, 40, 'snap1', NULL)",
            [],
        )
        .unwrap();
    }
    assert_eq!(user_version(&path), 0);

    let st = State::open(dir.path()).unwrap();
    const { assert!(LATEST >= 1) };
    assert_eq!(user_version(&path), LATEST);

    // The pin survived: the same recipients (in any order) pass, others are a key error.
    st.pin_recipients(
        "r1",
        "/srv/repo",
        &recipients(&["age1bbb", "age1aaa"]),
        false,
    )
    .unwrap();
    let refused = st
        .pin_recipients("r1", "/srv/repo", &recipients(&["age1evil"]), false)
        .unwrap_err();
    assert_eq!(refused.exit_code(), 6);

    // The cached pack recorded no size: it takes the size listed now, and is held to it.
    let listed: HashMap<String, u64> = [("pack1".to_string(), 900)].into();
    let known = st.known_blobs("r1", &listed).unwrap();
    assert_eq!(
        crate::hash::DigestSet::from_iter(known.blobs),
        crate::hash::DigestSet::from_iter([h1, h2])
    );
    assert!(known.notes.is_empty(), "{:?}", known.notes);
    let size: i64 = st
        .conn
        .query_row("SELECT size FROM packs WHERE pack_id = 'pack1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(size, 900);
    assert_eq!(
        st.last_snapshot("r1", "/data/invoices.db")
            .unwrap()
            .as_deref(),
        Some("snap1")
    );
    assert_eq!(
        st.copied_snapshot("r2", "snap1").unwrap().as_deref(),
        Some("snap9")
    );
    let job: (String, String, i64, Option<String>) = st
        .conn
        .query_row(
            "SELECT kind, outcome, bytes_stored, snapshot_id FROM jobs WHERE id = 7",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        job,
        ("backup".into(), "ok".into(), 40, Some("snap1".into()))
    );
}

#[test]
fn refuses_a_database_of_a_newer_schema_and_leaves_it_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let newer = LATEST + 1;
    {
        // Rollback-journal mode, so that even switching it to WAL would show in the bytes.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V0).unwrap();
        conn.execute_batch("CREATE TABLE from_the_future (x INTEGER);")
            .unwrap();
        conn.pragma_update(None, "user_version", newer).unwrap();
    }
    let before = std::fs::read(&path).unwrap();

    let msg = match State::open(dir.path()) {
        Err(e @ Error::Internal(_)) => e.message().to_string(),
        Err(other) => panic!("expected an internal error, got {other:?}"),
        Ok(_) => panic!("a state database of schema version {newer} was opened"),
    };
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("written by a newer ivault"), "{msg}");
    assert!(msg.contains("upgrade ivault"), "{msg}");
    assert!(msg.contains("move the file away"), "{msg}");

    assert_eq!(user_version(&path), newer);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the file was modified"
    );
}

#[test]
fn refuses_a_negative_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", -1)
        .unwrap();
    let err = State::open(dir.path()).err().expect("opened");
    assert!(
        matches!(&err, Error::Internal(f) if f.message.contains("move the file away")),
        "{err:?}"
    );
    assert_eq!(user_version(&path), -1);
}

#[test]
fn a_fresh_state_gets_the_newest_version_and_reopening_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let first = {
        let st = State::open(dir.path()).unwrap();
        let names: Vec<String> = schema(&st.conn).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, TABLES);
        let mode: String = st
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        st.set_last_snapshot("r1", "src", "snap1", 7).unwrap();
        schema(&st.conn)
    };
    assert_eq!(user_version(&path), LATEST);

    let st = State::open(dir.path()).unwrap();
    assert_eq!(user_version(&path), LATEST);
    assert_eq!(schema(&st.conn), first);
    assert_eq!(
        st.last_snapshot("r1", "src").unwrap().as_deref(),
        Some("snap1")
    );
    assert_eq!(st.changed_since_full("r1", "src").unwrap(), 7);
    assert_eq!(st.changed_since_full("r1", "other").unwrap(), 0);
}

#[test]
fn concurrent_opens_of_a_fresh_state_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let n = 6;
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    State::open(dir.path()).map(|st| st.job_start("test", None, None))
                })
            })
            .collect();
        for h in handles {
            let job = h.join().unwrap().unwrap();
            assert!(job.is_ok(), "{job:?}");
        }
    });
    assert_eq!(user_version(&db_path(dir.path())), LATEST);
}

fn pack(seed: u8, size: u64, blobs: &[u8]) -> CachedPack {
    CachedPack {
        id: hex::encode([seed; 32]),
        size,
        blobs: blobs.iter().map(|b| [*b; 32]).collect(),
    }
}

fn listing(packs: &[(&CachedPack, u64)]) -> HashMap<String, u64> {
    packs
        .iter()
        .map(|(p, size)| (p.id.clone(), *size))
        .collect()
}

#[test]
fn cached_packs_round_trip_and_vanished_packs_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = State::open(dir.path()).unwrap();
    let (a, b) = (pack(0xaa, 100, &[1, 2]), pack(0xbb, 200, &[3]));
    st.record_packs("r1", &[a.clone(), b.clone()]).unwrap();

    let only_a = listing(&[(&a, 100)]);
    assert_eq!(
        crate::hash::DigestSet::from_iter(st.known_blobs("r1", &only_a).unwrap().blobs),
        crate::hash::DigestSet::from_iter([[1u8; 32], [2; 32]])
    );
    // Pack b was dropped from the cache when the repository stopped listing it.
    let both = listing(&[(&a, 100), (&b, 200)]);
    assert_eq!(st.known_blobs("r1", &both).unwrap().blobs.len(), 2);
    // Another repository's cache is separate.
    assert!(st.known_blobs("r2", &both).unwrap().blobs.is_empty());
}

#[test]
fn a_pack_listed_at_another_size_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = State::open(dir.path()).unwrap();
    let (a, b) = (pack(0xaa, 100, &[1, 2]), pack(0xbb, 200, &[3]));
    st.record_packs("r1", &[a.clone(), b.clone()]).unwrap();
    let truncated = listing(&[(&a, 100), (&b, 150)]);
    let known = st.known_blobs("r1", &truncated).unwrap();
    assert_eq!(
        crate::hash::DigestSet::from_iter(known.blobs.iter().copied()),
        crate::hash::DigestSet::from_iter([[1u8; 32], [2; 32]])
    );
    assert_eq!(
        known.notes,
        vec![format!(
            "pack {} has 150 bytes but was written with 200; its pages are stored again",
            b.id
        )]
    );
    // Forgotten for good: the right size again (another copy put back) does not revive it.
    let known = st
        .known_blobs("r1", &listing(&[(&a, 100), (&b, 200)]))
        .unwrap();
    assert_eq!(known.blobs.len(), 2);
    assert!(known.notes.is_empty(), "{:?}", known.notes);
}

#[test]
fn packs_found_damaged_are_left_out_until_they_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = State::open(dir.path()).unwrap();
    let (a, b) = (pack(0xaa, 100, &[1, 2]), pack(0xbb, 200, &[2, 3]));
    st.record_packs("r1", &[a.clone(), b.clone()]).unwrap();
    let why = "a blob in the pack does not match its id".to_string();
    st.record_damaged_packs("r1", &[(a.id.clone(), why.clone())])
        .unwrap();
    let both = listing(&[(&a, 100), (&b, 200)]);
    let known = st.known_blobs("r1", &both).unwrap();
    // Blob 2 is also in the intact pack b; blob 1 only in the damaged a.
    assert_eq!(
        crate::hash::DigestSet::from_iter(known.blobs.iter().copied()),
        crate::hash::DigestSet::from_iter([[2u8; 32], [3; 32]])
    );
    assert_eq!(
        known.notes,
        vec!["1 pack was found damaged earlier; the pages it holds are stored again".to_string()]
    );
    assert_eq!(
        st.damaged_packs("r1").unwrap(),
        HashMap::from([(a.id.clone(), why)])
    );
    assert!(st.damaged_packs("r2").unwrap().is_empty());
    // Once the repository no longer lists the damaged pack, its record goes too.
    st.known_blobs("r1", &listing(&[(&b, 200)])).unwrap();
    assert!(st.damaged_packs("r1").unwrap().is_empty());
}

#[test]
fn finished_jobs_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let st = State::open(dir.path()).unwrap();
    let id = st.job_start("backup", Some("src"), Some("dst")).unwrap();
    let rec = JobRecord {
        outcome: "failed".into(),
        bytes_read: 3,
        error: Some("disk full".into()),
        ..Default::default()
    };
    st.job_finish(id, &rec).unwrap();
    let row: (String, i64, Option<String>, bool) = st
        .conn
        .query_row(
            "SELECT outcome, bytes_read, error, ended IS NOT NULL FROM jobs WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(row, ("failed".into(), 3, Some("disk full".into()), true));
}

#[test]
fn jobs_left_running_by_builds_that_recorded_no_process_are_abandoned_on_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(db_path(dir.path())).unwrap();
        conn.execute_batch(SCHEMA_V0).unwrap();
        conn.execute_batch(
            "INSERT INTO jobs (id, kind, started, outcome) VALUES
               (1, 'backup', '2025-01-01T00:00:00.000Z', 'running'),
               (2, 'backup', '2025-01-02T00:00:00.000Z', 'ok');",
        )
        .unwrap();
    }
    let st = State::open(dir.path()).unwrap();
    let rows: Vec<(i64, String, Option<String>)> = st
        .conn
        .prepare("SELECT id, outcome, error FROM jobs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let never = "the job never finished, and the ivault that ran it did not record its process";
    assert_eq!(
        rows,
        [
            (1, "abandoned".into(), Some(never.into())),
            (2, "ok".into(), None)
        ]
    );
}

#[test]
fn drills_are_listed_newest_first_per_source_and_target_with_their_reports() {
    let dir = tempfile::tempdir().unwrap();
    let st = State::open(dir.path()).unwrap();
    let row = |source: &str, target: &str, rto: u64| crate::state::DrillRow {
        id: 0,
        started: "2026-01-01T00:00:00Z".into(),
        finished: "2026-01-01T00:01:00Z".into(),
        source: source.into(),
        target: target.into(),
        snapshot_id: Some("ab".into()),
        verdict: "passed".into(),
        rto_ms: rto,
        rpo_ms: 7,
        bytes_read: 9,
        report: String::new(),
    };
    let a = st
        .record_drill(&row("books", "local", 1), |id| format!("{{\"id\":{id}}}"))
        .unwrap();
    let b = st
        .record_drill(&row("books", "s3", 2), |id| format!("{{\"id\":{id}}}"))
        .unwrap();
    let c = st
        .record_drill(&row("books", "local", 3), |id| format!("{{\"id\":{id}}}"))
        .unwrap();
    let ids = |rows: Vec<crate::state::DrillRow>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(st.drills(None, 10).unwrap()), vec![c, b, a]);
    assert_eq!(
        ids(st.drills(Some(("books", "local")), 10).unwrap()),
        vec![c, a]
    );
    assert_eq!(ids(st.drills(None, 1).unwrap()), vec![c]);
    let got = st.drill(b).unwrap().unwrap();
    assert_eq!((got.target.as_str(), got.rto_ms), ("s3", 2));
    assert_eq!(got.report, format!("{{\"id\":{b}}}"));
    assert!(st.drill(c + 1).unwrap().is_none());
}

#[test]
fn skipped_runs_are_recorded_once_per_slot() {
    let dir = tempfile::tempdir().unwrap();
    let st = State::open(dir.path()).unwrap();
    let why = "the incremental started at 2026-11-23T00:00:00Z was still running";
    for _ in 0..2 {
        st.record_schedule_skip("books", "incremental", "2026-11-23T01:00:00Z", why)
            .unwrap();
    }
    st.record_schedule_skip("books", "incremental", "2026-11-23T03:00:00Z", why)
        .unwrap();
    st.record_schedule_skip("shop", "drill", "2026-11-23T03:00:00Z", why)
        .unwrap();
    let skips = st.schedule_skips("books").unwrap();
    assert_eq!(
        skips
            .iter()
            .map(|(k, t, _)| (k.as_str(), t.as_str()))
            .collect::<Vec<_>>(),
        [
            ("incremental", "2026-11-23T01:00:00Z"),
            ("incremental", "2026-11-23T03:00:00Z")
        ]
    );
    assert_eq!(skips[0].2, why);
}
