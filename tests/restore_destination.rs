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

/// A tmpfs mounted on a directory for as long as it lives (tests run as root in CI).
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// `None` where this process may not mount (not root).
    fn mount(dir: PathBuf, bytes: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(&dir).unwrap();
        let size = format!("size={}k", bytes.div_ceil(4096) * 4);
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_restore_onto_a_disk_too_small_fails_with_the_directory_named_and_leaves_nothing() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let invoices = env.database("invoices.sqlite", 4, JournalMode::Wal);
    let ledger = env.path("ledger.sqlite");
    common::ledger::create(&ledger);
    for db in [&invoices, &ledger] {
        let name = db.file_name().unwrap().to_str().unwrap();
        let source = db.to_str().unwrap();
        let snapshot = env.backup_report(source, &repo, &[])["snapshot_id"]
            .as_str()
            .unwrap()
            .to_string();
        let roomy = env.path(&format!("roomy-{name}"));
        env.restore(&snapshot, &repo, &key, &roomy);
        let size = std::fs::metadata(&roomy).unwrap().len();

        let dir = env.path(&format!("small-{name}"));
        let Some(disk) = SmallDisk::mount(dir.clone(), size / 2) else {
            eprintln!("skipped: cannot mount a tmpfs here (not root)");
            return;
        };
        let to = dir.join(name);
        let r = env.restore_with(&snapshot, &repo, &key, &to, &[]);
        assert_eq!(r.code, DESTINATION, "{name}: {}", r.stderr);
        assert_eq!(
            r.stderr,
            format!(
                "ivault: writing the restored file in {} failed: No space left on device (os error 28); free space or restore elsewhere\n",
                dir.display()
            ),
            "{name}"
        );
        assert_eq!(walk(&dir), Vec::<PathBuf>::new(), "{name}: left behind");
        drop(disk);

        // With room, the same restore gives the same bytes.
        let _disk = SmallDisk::mount(dir.clone(), size * 2 + (1 << 20)).unwrap();
        env.restore(&snapshot, &repo, &key, &to);
        assert_eq!(sha256_file(&to), sha256_file(&roomy), "{name}");
        assert_eq!(common::sqlite_checks(&to), None, "{name}");
    }
}
