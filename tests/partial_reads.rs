//! A later snapshot whose pages sit partly in an older pack reads only the frames it needs
//! from that pack (by range, on local disk and on S3), and still restores byte for byte; the
//! pack it reads whole is still checked against its name.

mod common;
use common::s3::S3Server;
use common::Env;
use std::path::{Path, PathBuf};

/// A rollback-journal database: a small table that never changes and a large one (with rows
/// that do not compress away) that is replaced between the two backups.
fn database(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE kept (id INTEGER PRIMARY KEY, note TEXT);
         CREATE TABLE churn (id INTEGER PRIMARY KEY, body BLOB);
         WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 2000)
         INSERT INTO kept SELECT v, 'kept ' || v FROM n;",
    )
    .unwrap();
    fill_churn(&c, 1);
}

/// 6 MiB of fresh random rows in `churn`, in place of what it held.
fn fill_churn(c: &rusqlite::Connection, round: i64) {
    c.execute_batch(&format!(
        "DELETE FROM churn;
         WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 6000)
         INSERT INTO churn SELECT v + {round} * 100000, randomblob(1000) FROM n;"
    ))
    .unwrap();
}

fn restore_reads_part_of_the_old_pack(env: &Env, repo: &str, key: &str, packs: &dyn Fn() -> u64) {
    let db = env.path("db.sqlite");
    database(&db);
    let dbs = db.to_str().unwrap();
    env.backup_report(dbs, repo, &[]);
    let first_packs = packs();
    fill_churn(&rusqlite::Connection::open(&db).unwrap(), 2);
    let second = env.backup_report(dbs, repo, &[]);
    let new_bytes = packs() - first_packs;

    let out = env.path("restored.sqlite");
    let second = second["snapshot_id"].as_str().unwrap();
    let run = env.restore_with(second, repo, key, &out, &["--json"]).ok();
    assert_eq!(common::sha256_file(&out), common::sha256_file(&db));
    let read = run.json()["bytes_read"].as_u64().unwrap();
    // The new pack whole, and of the first pack much less than all: the kept table's pages
    // (and the schema) are a few percent of it.
    assert!(read >= new_bytes, "read {read}, new packs {new_bytes}");
    assert!(
        read < new_bytes + first_packs / 2,
        "read {read} bytes: new packs {new_bytes}, first backup's {first_packs}"
    );
    assert!(common::sqlite_checks(&out).is_none());
}

fn bytes_under(dir: &Path) -> u64 {
    common::walk(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn a_later_snapshot_reads_only_its_frames_of_an_older_pack_on_local_disk() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let data = PathBuf::from(&repo).join("data");
    restore_reads_part_of_the_old_pack(&env, &repo, &key, &|| bytes_under(&data));
}

#[test]
fn a_later_snapshot_reads_only_its_frames_of_an_older_pack_on_s3() {
    let server = S3Server::start();
    server.bucket("invoices");
    let env = Env::with_vars(server.env());
    let (key, recipient) = env.new_key("id.txt");
    let repo = "s3://invoices/partial";
    env.run(&["init", repo, "--recipient", &recipient]).ok();
    let data = server.root.join("invoices/partial/data");
    restore_reads_part_of_the_old_pack(&env, repo, &key, &|| bytes_under(&data));
}
