//! Progress bars: on a terminal (a pseudo-terminal from util-linux's `script`), backup,
//! restore, `check --read-data` and copy draw a bar with bytes, rate and time left above their
//! summary; with `--json`, or when stderr is not a terminal, nothing extra is written.

mod common;
use common::Env;
use invoice_vault::sample::JournalMode;
use std::process::Command;

/// Runs ivault with `args` on a pseudo-terminal; returns what the terminal showed.
fn on_a_terminal(env: &Env, args: &[&str]) -> String {
    let bin = env!("CARGO_BIN_EXE_ivault");
    let quoted: Vec<String> = std::iter::once(bin)
        .chain(["--state-dir", env.path("state").to_str().unwrap()])
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let out = Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .current_dir(env.path(""))
        .output()
        .expect("util-linux's script (scripts/test installs it)");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?}: {shown}");
    shown
}

/// A bar that got to its end: the label, the whole size twice, a rate and the time left.
fn drew_a_bar(shown: &str, label: &str) -> bool {
    shown
        .lines()
        .flat_map(|l| l.split('\r'))
        .any(|l| l.contains(&format!("{label} [")) && l.contains("MiB/") && l.contains("left"))
}

#[test]
fn long_commands_draw_a_bar_on_a_terminal_and_nothing_elsewhere() {
    let env = Env::new();
    let (key, repo) = env.key_and_repo();
    let db = env.database("books.sqlite", 8, JournalMode::Wal);
    let db = db.to_str().unwrap();
    let other = env.path("other").to_str().unwrap().to_string();
    let (_, other_recipient) = env.new_key("other.txt");
    env.run(&["init", &other, "--recipient", &other_recipient])
        .ok();

    let shown = on_a_terminal(&env, &["backup", db, "--to", &repo]);
    assert!(drew_a_bar(&shown, "backup"), "{shown}");
    assert!(
        shown.contains("\nsnapshot ") || shown.contains("\rsnapshot "),
        "{shown}"
    );

    let restore = ["restore", "latest", "--repo", &repo, "--identity", &key];
    let mut args = restore.to_vec();
    args.extend(["--to", "r1.sqlite"]);
    let shown = on_a_terminal(&env, &args);
    assert!(drew_a_bar(&shown, "restore"), "{shown}");

    let check = ["check", "--repo", &repo, "--identity", &key, "--read-data"];
    let shown = on_a_terminal(&env, &check);
    assert!(drew_a_bar(&shown, "check"), "{shown}");

    let copy = ["copy", "--from", &repo, "--identity", &key, "--to", &other];
    let shown = on_a_terminal(&env, &copy);
    assert!(drew_a_bar(&shown, "copy"), "{shown}");

    // --json on a terminal: the JSON alone.
    let mut args = restore.to_vec();
    args.extend(["--to", "r2.sqlite", "--json"]);
    let shown = on_a_terminal(&env, &args);
    let json: serde_json::Value = serde_json::from_str(shown.trim()).expect("only JSON");
    assert_eq!(json["check"], "quick");

    // Not a terminal: stderr stays empty.
    let r = env.run(&["backup", db, "--to", &repo]).ok();
    assert_eq!(r.stderr, "");
    let mut args = restore.to_vec();
    args.extend(["--to", "r3.sqlite"]);
    assert_eq!(env.run(&args).ok().stderr, "");
    assert_eq!(env.run(&check).ok().stderr, "");
}
