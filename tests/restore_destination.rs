//! A restore never writes inside the repository it reads, however the destination is spelled
//! and even when told to overwrite: the repository's `config` and objects stay as they were.

mod common;
use common::{sha256_file, walk, Env};
use invoice_vault::sample::JournalMode;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DESTINATION: i32 = 7;

/// Every file under `dir` with its SHA-256.
fn contents(dir: &Path) -> BTreeMap<PathBuf, String> {
    walk(dir)
        .into_iter()
        .map(|p| (p.clone(), sha256_file(&p)))
        .collect()
}

#[test]
fn a_destination_inside_the_repository_is_refused_even_with_force() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    env.backup_report(db.to_str().unwrap(), &repo, &[]);
    std::os::unix::fs::symlink(&repo, env.path("link")).unwrap();
    std::fs::create_dir(env.path("sub")).unwrap();
    let before = contents(Path::new(&repo));
    let canonical = std::fs::canonicalize(&repo).unwrap();
    let config = format!("{repo}/config");
    let data = format!("{repo}/data/restored.sqlite");
    for (to, force) in [
        (config.as_str(), true),
        (config.as_str(), false),
        ("repo/new.sqlite", false),
        (data.as_str(), true),
        ("link/config", true),
        ("sub/../repo/config", true),
        ("repo", true),
    ] {
        let mut args = vec![
            "restore",
            "latest",
            "--repo",
            &repo,
            "--identity",
            &key,
            "--to",
            to,
        ];
        if force {
            args.push("--force");
        }
        let r = env.run(&args);
        assert_eq!(r.code, DESTINATION, "{to}: {}", r.stderr);
        assert_eq!(
            r.stderr,
            format!(
                "ivault: {to} is inside repository {}, which the restore reads; restore to a path outside the repository\n",
                canonical.display()
            )
        );
        assert_eq!(
            contents(Path::new(&repo)),
            before,
            "{to} changed the repository"
        );
    }
    // Beside the repository, even under a name that begins like it, is fine.
    let beside = env.path("repo.sqlite");
    env.restore("latest", &repo, &key, &beside);
    assert_eq!(common::sqlite_checks(&beside), None);
    env.run(&["check", "--repo", &repo, "--identity", &key, "--read-data"])
        .ok();
}
