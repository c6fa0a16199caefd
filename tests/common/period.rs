//! Helpers of the period restore tests: a policy naming one source and its business
//! description, table dumps to compare row by row, and the live file's hash.

use super::{Env, Run};
use rusqlite::types::Value;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// A repository, a key and a policy naming `db` as source `name` with `business` (the lines
/// of its `[source.business]`), its one target `local`.
pub struct Setup {
    pub policy: PathBuf,
    pub repo: String,
    pub key: String,
    pub name: String,
}

impl Setup {
    pub fn new(env: &Env, name: &str, db: &Path, business: &str) -> Setup {
        let (key, repo) = env.key_and_repo();
        let recipient = std::fs::read_to_string(&key)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
            .expect("public key line");
        let policy = env.path(&format!("{name}.toml"));
        std::fs::write(
            &policy,
            format!(
                "[[source]]\nname = \"{name}\"\npath = \"{}\"\n[source.business]\n{business}\n\n[[target]]\nname = \"local\"\nurl = \"{repo}\"\n\n[encryption]\nrecipients = [\"{recipient}\"]\nidentity_file = \"{key}\"\n",
                db.display()
            ),
        )
        .unwrap();
        Setup {
            policy,
            repo,
            key,
            name: name.to_string(),
        }
    }

    /// Backs the source up; returns the snapshot id.
    pub fn backup(&self, env: &Env) -> String {
        let r = env
            .run(&[
                "backup",
                &self.name,
                "--policy",
                self.policy.to_str().unwrap(),
                "--json",
            ])
            .ok();
        r.json()[0]["snapshot_id"].as_str().unwrap().to_string()
    }

    /// `restore-period SOURCE --policy P ARGS… --json`.
    pub fn period(&self, env: &Env, args: &[&str]) -> Run {
        let mut all = vec![
            "restore-period",
            &self.name,
            "--policy",
            self.policy.to_str().unwrap(),
            "--json",
        ];
        all.extend_from_slice(args);
        env.run(&all)
    }
}

/// Every row `sql` selects, as SQLite values.
pub fn dump(db: &Path, sql: &str) -> Vec<Vec<Value>> {
    let c = Connection::open(db).unwrap();
    let mut stmt = c.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|k| r.get::<_, Value>(k)).collect())
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// One number `sql` selects.
pub fn number(db: &Path, sql: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// The counts per table of a report's missing, changed and extra rows.
pub fn counts(report: &serde_json::Value, table: &str) -> (usize, usize, usize) {
    let t = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == table)
        .unwrap_or_else(|| panic!("no table {table} in {report}"));
    let n = |k: &str| t[k].as_array().unwrap().len();
    (n("missing"), n("changed"), n("extra"))
}
