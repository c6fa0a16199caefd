//! Every path ivault is given (source database, restore destination, repository, state
//! directory, policy file, identity file) may hold non-ASCII characters, spaces and the
//! characters SQLite URIs give a meaning to (`#`, `?`, `%`, a leading `file:`).

mod common;
use common::{sha256_file, Env};
use invoice_vault::sample::{self, GenerateOptions, JournalMode};
use invoice_vault::source::compare;
use std::path::{Path, PathBuf};

/// Creates a database at `p` (whose directory exists).
fn database(p: &Path, mode: JournalMode) {
    let opts = GenerateOptions {
        size_mb: 1,
        seed: 11,
        journal_mode: mode,
    };
    sample::generate(p, &opts).expect("generate");
}

/// The whole round trip with every path under `dir`, given to ivault as `arg(dir)`: absolute
/// paths, or paths relative to the working directory.
fn round_trip(env: &Env, dir: &str, relative: bool) {
    let base = env.path(dir);
    std::fs::create_dir(&base).unwrap();
    let arg = |name: &str| -> String {
        let p = if relative {
            PathBuf::from(dir).join(name)
        } else {
            base.join(name)
        };
        p.to_str().unwrap().to_string()
    };
    let (wal_db, journal_db) = ("发票 wal#1?%.sqlite", "发票 journal#2?%.sqlite");
    database(&base.join(wal_db), JournalMode::Wal);
    database(&base.join(journal_db), JournalMode::Rollback);
    let (state, key, repo, policy) = (
        arg("状态 #?%"),
        arg("密钥 #?%.txt"),
        arg("仓库 #?%"),
        arg("策略 #?%.toml"),
    );
    let state_args = ["--state-dir", state.as_str()];
    let run = |args: &[&str]| env.run(&[args, &state_args[..]].concat()).ok();

    let recipient = run(&["key", "generate", "--out", &key])
        .stdout
        .trim()
        .to_string();
    run(&["init", &repo, "--recipient", &recipient]);
    std::fs::write(
        base.join("策略 #?%.toml"),
        format!(
            "[[source]]\nname = \"journal\"\npath = \"{}\"\n\n[[target]]\nname = \"local\"\nurl = \"{repo}\"\n\n[encryption]\nidentity_file = \"{key}\"\n",
            arg(journal_db)
        ),
    )
    .unwrap();
    let with_policy = ["--policy", policy.as_str()];

    // One source named on the command line, one through the policy.
    run(&["backup", &arg(wal_db), "--to", &repo]);
    run(&[&["backup", "journal"][..], &with_policy].concat());

    let listed = run(&["snapshots", "--repo", &repo, "--identity", &key, "--json"]).json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    for (name, file) in [("发票 wal#1?%", wal_db), ("journal", journal_db)] {
        let s = listed
            .iter()
            .find(|s| s["source"] == name)
            .unwrap_or_else(|| panic!("no snapshot of {name}: {listed:?}"));
        let canonical = std::fs::canonicalize(base.join(file)).unwrap();
        assert_eq!(s["path"], canonical.to_str().unwrap());
        assert_eq!(s["database_sha256"], sha256_file(&base.join(file)));
    }

    let out_wal = "还原 wal #?%.sqlite";
    run(&[
        "restore",
        "latest",
        "--source",
        "发票 wal#1?%",
        "--repo",
        &repo,
        "--identity",
        &key,
        "--to",
        &arg(out_wal),
    ]);
    let out_journal = "还原 journal #?%.sqlite";
    let restore_journal = [
        "restore",
        "latest",
        "--source",
        "journal",
        "--repo",
        "local",
        "--to",
        &arg(out_journal),
    ];
    run(&[&restore_journal[..], &with_policy].concat());
    for (source, restored) in [(wal_db, out_wal), (journal_db, out_journal)] {
        let (source, restored) = (base.join(source), base.join(restored));
        assert_eq!(sha256_file(&restored), sha256_file(&source));
        assert_eq!(
            compare::differing_tables(&source, &restored).unwrap(),
            Vec::<String>::new()
        );
    }

    let c = run(&["check", "--repo", &repo, "--identity", &key, "--read-data"]);
    assert_eq!(
        c.stdout.lines().last(),
        Some("no problems found"),
        "{}",
        c.stdout
    );
    let c = run(&[&["check", "--repo", "local"][..], &with_policy].concat());
    assert_eq!(
        c.stdout.lines().last(),
        Some("no problems found"),
        "{}",
        c.stdout
    );

    // The state went where it was told, and nothing half-written is left.
    assert!(base.join("状态 #?%").join("state.sqlite").is_file());
    assert_eq!(env.files_named(".ivault-"), Vec::<PathBuf>::new());
}

#[test]
fn absolute_paths_with_non_ascii_spaces_and_uri_characters() {
    let env = Env::new();
    round_trip(&env, "北京 分公司#1?%", false);
}

#[test]
fn relative_paths_that_begin_like_a_sqlite_uri() {
    let env = Env::new();
    round_trip(&env, "file:北京 分公司#1?%", true);
}
