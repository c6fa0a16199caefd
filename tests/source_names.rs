//! Two databases with the same file name in different directories would get the same default
//! source name, and `restore latest --source NAME` would mix them: the second is refused until
//! it is given a name of its own.

mod common;
use common::{sha256_file, walk, Env};
use invoice_vault::sample::{self, GenerateOptions, JournalMode};
use invoice_vault::source::compare;
use std::path::{Path, PathBuf};

const USAGE: i32 = 2;
const PARTIAL: i32 = 8;

fn database(env: &Env, dir: &str, seed: u64) -> PathBuf {
    std::fs::create_dir(env.path(dir)).unwrap();
    let p = env.path(dir).join("db.sqlite");
    let opts = GenerateOptions {
        size_mb: 1,
        seed,
        journal_mode: JournalMode::Wal,
    };
    sample::generate(&p, &opts).unwrap();
    p
}

fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut all: Vec<_> = walk(dir)
        .into_iter()
        .map(|p| (p.clone(), sha256_file(&p)))
        .collect();
    all.sort();
    all
}

#[test]
fn a_second_file_of_the_same_name_needs_a_name_of_its_own() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let (a, b) = (database(&env, "a", 1), database(&env, "b", 2));
    assert_ne!(sha256_file(&a), sha256_file(&b));
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
    env.run(&["backup", a_s, "--to", &repo]).ok();
    let before = files(Path::new(&repo));

    let r = env.run(&["backup", b_s, "--to", &repo]);
    assert_eq!(r.code, USAGE, "{}", r.stderr);
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap().display().to_string();
    assert_eq!(
        r.stderr,
        format!(
            "ivault: repository {repo} already holds snapshots of {} under the source name db, which {} would also get from its file name; give this one its own name with --name NAME\n",
            canonical(&a),
            canonical(&b)
        )
    );
    assert_eq!(r.stdout, "");
    assert_eq!(files(Path::new(&repo)), before, "the refused backup wrote");

    // The check is per repository: a second target that never saw `db` takes the backup.
    let (_, recipient) = env.new_key("other.txt");
    let repo2 = env.path("repo2");
    let repo2 = repo2.to_str().unwrap();
    env.run(&["init", repo2, "--recipient", &recipient]).ok();
    let r = env.run(&["backup", b_s, "--to", &repo, "--to", repo2]);
    assert_eq!(r.code, PARTIAL, "{}", r.stderr);
    assert_eq!(files(Path::new(&repo)), before);
    assert_eq!(walk(&Path::new(repo2).join("snapshots")).len(), 1);

    // The same file again, and the other one under its own name, both go through.
    env.run(&["backup", a_s, "--to", &repo]).ok();
    env.run(&["backup", b_s, "--to", &repo, "--name", "b-db"])
        .ok();
    for (source, db) in [("b-db", &b), ("db", &a)] {
        let out = env.path(&format!("{source}.sqlite"));
        let to = out.to_str().unwrap();
        env.run(&[
            "restore",
            "latest",
            "--source",
            source,
            "--repo",
            &repo,
            "--identity",
            &key,
            "--to",
            to,
        ])
        .ok();
        assert_eq!(sha256_file(&out), sha256_file(db), "{source}");
        assert_eq!(
            compare::differing_tables(db, &out).unwrap(),
            Vec::<String>::new()
        );
    }
}
