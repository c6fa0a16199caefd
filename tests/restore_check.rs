//! The SQLite check a restore runs after the SHA-256: `quick_check` by default,
//! `--integrity-check full` (per table, in parallel, with a whole-file `quick_check`) and
//! `off`, each restoring a sound database byte for byte and saying which check ran. (A source
//! only the full check finds damaged: tests/damage.rs.)

mod common;
use common::{sha256_file, Env};
use invoice_vault::sample::JournalMode;
use std::path::Path;

/// Two unlike databases: WAL, and rollback journal (whose image is staged before it is checked).
const DATABASES: [(&str, JournalMode); 2] = [
    ("wal.sqlite", JournalMode::Wal),
    ("rollback.sqlite", JournalMode::Rollback),
];

/// Backs `db` up into `repo`; returns the snapshot's id.
fn backed_up(env: &Env, db: &str, repo: &str, extra: &[&str]) -> String {
    env.backup_report(db, repo, extra)["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn restore(env: &Env, repo: &str, key: &str, id: &str, out: &Path, level: &[&str]) -> common::Run {
    let mut args = vec!["--json"];
    args.extend_from_slice(level);
    env.restore_with(id, repo, key, out, &args)
}

#[test]
fn a_sound_database_passes_every_level_byte_for_byte() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    for (name, mode) in DATABASES {
        let db = env.database(name, 2, mode);
        let id = backed_up(&env, db.to_str().unwrap(), &repo, &[]);
        for level in ["off", "quick", "full"] {
            let out = env.path(&format!("{level}-{name}"));
            let r = restore(&env, &repo, &key, &id, &out, &["--integrity-check", level])
                .ok()
                .json();
            assert_eq!(r["check"], level);
            assert_eq!(r["integrity_checked"], level != "off");
            assert_eq!(r["check_at_backup"], false);
            assert_eq!(sha256_file(&out), sha256_file(&db), "{level} {name}");
        }
    }
    // The old spelling of `off` still works, and cannot be combined with a level.
    let out = env.path("skipped.sqlite");
    let id = env.snapshot_list(&repo, &key)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = restore(&env, &repo, &key, &id, &out, &["--skip-integrity-check"])
        .ok()
        .json();
    assert_eq!(r["check"], "off");
    let both = ["--skip-integrity-check", "--integrity-check", "full"];
    let r = restore(&env, &repo, &key, &id, &env.path("both.sqlite"), &both);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// By default a restore relies on the quick_check its backup ran on the very image, recorded in
/// the manifest, and runs SQLite's check only when none passed there; an explicit level always
/// runs.
#[test]
fn the_default_check_is_the_one_the_backup_recorded_when_it_passed() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    for (name, mode) in DATABASES {
        let db = env.database(name, 2, mode);
        let db = db.to_str().unwrap();
        let checked = backed_up(&env, db, &repo, &[]);
        let unchecked = backed_up(&env, db, &repo, &["--source-check", "off"]);
        for (id, extra, at_backup) in [
            (&checked, &[][..], true),
            (&checked, &["--integrity-check", "quick"][..], false),
            (&unchecked, &[][..], false),
        ] {
            let out = env.path(&format!("{}-{at_backup}-{}", &id[..8], extra.len()));
            let r = restore(&env, &repo, &key, id, &out, extra).ok().json();
            assert_eq!(r["check"], "quick", "{r}");
            assert_eq!(r["integrity_checked"], true, "{r}");
            assert_eq!(r["check_at_backup"], at_backup, "{name} {extra:?}: {r}");
            assert_eq!(sha256_file(&out), sha256_file(Path::new(db)));
        }
    }
}
