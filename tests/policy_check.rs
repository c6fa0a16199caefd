//! `ivault policy check`: the shipped example passes; each kind of mistake is its own sentence
//! naming the file (and the line where there is one); a directory is checked file by file.

mod common;
use common::Env;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/example.toml");

#[test]
fn the_example_policy_passes_and_shows_the_next_runs() {
    let env = Env::new();
    let r = env.run(&["policy", "check", EXAMPLE]).ok();
    assert!(
        r.stdout.starts_with(&format!("ok: {EXAMPLE}\n")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("1 sources (beijing), 2 targets (local, offsite)"),
        "{}",
        r.stdout
    );
    for kind in [
        "incremental (0 * * * *): next ",
        "full (30 1 * * Sun): next ",
        "drill (0 3 * * *): next ",
    ] {
        assert!(r.stdout.contains(kind), "{kind}: {}", r.stdout);
    }
}

#[test]
fn each_mistake_is_named_with_its_file_and_line() {
    let env = Env::new();
    let dir = env.path("policies");
    std::fs::create_dir(&dir).unwrap();
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    let write = |name: &str, text: String| {
        assert_ne!(text, example, "{name}: the mistake was not made");
        std::fs::write(dir.join(name), text).unwrap();
    };
    write(
        "a-typo.toml",
        example.replace("keep_daily = 14", "keep_dialy = 14"),
    );
    write(
        "b-cron.toml",
        example.replace("drill = \"0 3 * * *\"", "drill = \"0 3 * * * *\""),
    );
    write("c-keeps-nothing.toml", {
        let start = example.find("[retention]").unwrap();
        let end = example.find("[objectives]").unwrap();
        format!(
            "{}[retention]\nkeep_last = 0\n\n{}",
            &example[..start],
            &example[end..]
        )
    });
    write(
        "d-no-recipient.toml",
        example.replace(
            "recipients = [\"age14jz3w882y3pwdmaml5hxf6g9fj9m7ddz8yjeau7m9zw44nxale0qqdvd98\"]",
            "recipients = []",
        ),
    );
    write(
        "e-bad-recipient.toml",
        example.replace(
            "age14jz3w882y3pwdmaml5hxf6g9fj9m7ddz8yjeau7m9zw44nxale0qqdvd98",
            "age1nope",
        ),
    );
    let line_of = |needle: &str| example.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let r = env.run(&["policy", "check", dir.to_str().unwrap()]);
    assert_eq!(r.code, 9, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    let f = |name: &str| dir.join(name).display().to_string();
    assert_eq!(lines.len(), 5, "{}", r.stderr);
    assert_eq!(
        lines[0],
        format!(
            "ivault: policy {}, line {}: unknown key keep_dialy; did you mean keep_daily?",
            f("a-typo.toml"),
            line_of("keep_daily")
        )
    );
    assert!(
        lines[1].starts_with(&format!("ivault: policy {}, line {}: [schedule] drill: \"0 3 * * * *\" is not a 5-field cron expression", f("b-cron.toml"), line_of("drill ="))),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        format!("ivault: policy {}: [retention] keeps no snapshot at all; give at least one keep rule above 0", f("c-keeps-nothing.toml"))
    );
    assert_eq!(
        lines[3],
        format!("ivault: policy {}: [encryption] recipients is empty; `ivault init` of its targets needs the public recipient (age1…)", f("d-no-recipient.toml"))
    );
    assert!(
        lines[4].starts_with(&format!(
            "ivault: policy {}: [encryption] recipients: ",
            f("e-bad-recipient.toml")
        )),
        "{}",
        lines[4]
    );
    assert!(!r.stdout.contains("ok:"), "{}", r.stdout);
}

#[test]
fn a_glob_makes_every_matching_database_a_source_and_one_that_matches_nothing_is_refused() {
    let env = Env::new();
    let dir = env.path("branches");
    std::fs::create_dir_all(dir.join("old")).unwrap();
    for name in ["suzhou", "wuxi"] {
        env.database(
            &format!("branches/{name}.sqlite"),
            1,
            invoice_vault::sample::JournalMode::Wal,
        );
    }
    std::fs::write(dir.join("notes.txt"), "not a database").unwrap();
    std::fs::write(
        dir.join("old/archive.sqlite"),
        "not matched: * stays in its directory",
    )
    .unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/branches.toml"
    ))
    .unwrap();
    let glob = format!("{}/*.sqlite", dir.display());
    let policy = env.path("branches.toml");
    std::fs::write(
        &policy,
        example.replace("/srv/invoices/branches/*.sqlite", &glob),
    )
    .unwrap();
    let r = env.run(&["policy", "check", policy.to_str().unwrap()]).ok();
    assert!(
        r.stdout
            .contains("2 sources (branch-suzhou, branch-wuxi), 1 targets (local)"),
        "{}",
        r.stdout
    );

    let empty = format!("{}/*.db", dir.display());
    std::fs::write(
        &policy,
        example.replace("/srv/invoices/branches/*.sqlite", &empty),
    )
    .unwrap();
    let r = env.run(&["policy", "check", policy.to_str().unwrap()]);
    assert_eq!(r.code, 9, "{}", r.stderr);
    let line = example
        .lines()
        .position(|l| l.starts_with("glob ="))
        .unwrap()
        + 1;
    assert_eq!(
        r.stderr.trim(),
        format!(
            "ivault: policy {}, line {line}: source glob {empty:?} matches no file; check the pattern and the directory",
            policy.display()
        )
    );
}

#[test]
fn next_runs_are_shown_in_the_policy_time_zone() {
    let env = Env::new();
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    // Kathmandu is 5:45 ahead of UTC all year: no host's local zone can pass for it.
    let text = example
        .replace(
            "# time_zone = \"Asia/Shanghai\"",
            "time_zone = \"Asia/Kathmandu\"",
        )
        .replace("# jitter = \"5m\"", "jitter = \"5m\"");
    assert_ne!(text, example);
    let file = env.path("p.toml");
    std::fs::write(&file, &text).unwrap();
    let r = env.run(&["policy", "check", file.to_str().unwrap()]).ok();
    assert!(
        r.stdout.contains("schedules in time zone Asia/Kathmandu"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("up to 5 min 00 s late (jitter)"),
        "{}",
        r.stdout
    );
    let drill = r
        .stdout
        .lines()
        .find(|l| l.contains("drill (0 3 * * *): next "))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert_eq!(drill.matches(" 03:00 +05:45").count(), 3, "{drill}");

    let wrong = text.replace("Asia/Kathmandu", "Asia/Katmandoo");
    std::fs::write(&file, &wrong).unwrap();
    let line = wrong
        .lines()
        .position(|l| l.starts_with("time_zone"))
        .unwrap()
        + 1;
    let r = env.run(&["policy", "check", file.to_str().unwrap()]);
    assert_eq!(r.code, 9, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "policy {}, line {line}: [schedule] time_zone = \"Asia/Katmandoo\" is not a time zone",
            file.display()
        )),
        "{}",
        r.stderr
    );
}
