//! A secret key given where a public recipient or a path belongs is named as such and never
//! repeated: not on stdout, not on stderr (the system journal, under systemd), not in the job
//! history. Every way in is tried: arguments, files, the environment and policies.

mod common;
use common::{Env, Run};
use invoice_vault::sample::JournalMode;
use std::os::unix::fs::PermissionsExt;

const USAGE: i32 = 2;
const SOURCE: i32 = 3;
const REPOSITORY: i32 = 4;
const KEY: i32 = 6;
const PARTIAL: i32 = 8;
const POLICY: i32 = 9;

const NOT_SHOWN: &str = "[secret key not shown]";
const GIVE_PUBLIC: &str = "give its public key age1…, which `ivault key generate` printed and the identity file's `# public key:` line repeats";
const KEEP_IN_FILE: &str =
    "keep the key in a file (mode 0600) and pass that file's path with --identity or IVAULT_IDENTITY";

/// Fails if any output holds the key's prefix or any 8 characters of its body, in any case.
#[track_caller]
fn assert_no_leak(what: &str, text: &str, key: &str) {
    let text = text.to_ascii_lowercase();
    assert!(!text.contains("age-secret-key"), "{what} leaks: {text}");
    let body = key["AGE-SECRET-KEY-".len()..].to_ascii_lowercase();
    for i in 0..=body.len() - 8 {
        let part = &body[i..i + 8];
        assert!(!text.contains(part), "{what} leaks {part:?}: {text}");
    }
}

/// base64 (standard alphabet, padded), wrapped at 64 columns as age's armor is.
fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out.as_bytes()
        .chunks(64)
        .map(|l| format!("{}\n", String::from_utf8_lossy(l)))
        .collect()
}

struct Case {
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    code: i32,
    /// The whole of stderr.
    stderr: String,
}

fn case(args: &[&str], code: i32, stderr: impl Into<String>) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        code,
        stderr: stderr.into(),
    }
}

#[test]
fn a_secret_key_in_the_wrong_place_is_named_and_never_repeated() {
    let env = Env::new();
    let (identity, recipient) = env.new_key("id.txt");
    let text = std::fs::read_to_string(&identity).unwrap();
    let key = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_string();
    let lower = key.to_ascii_lowercase();
    env.run(&["init", "repo", "--recipient", &recipient]).ok();
    let db = env.database("db.sqlite", 1, JournalMode::Wal);
    let db = db.to_str().unwrap();
    env.run(&["backup", db, "--to", "repo"]).ok();

    let pass = "correct horse battery staple";
    env.run_env(
        &["key", "generate", "--out", "locked.txt", "--passphrase"],
        &[("IVAULT_PASSPHRASE", pass)],
    )
    .ok();
    let locked = std::fs::read(env.path("locked.txt")).unwrap();
    std::fs::write(
        env.path("armored.txt"),
        format!(
            "-----BEGIN AGE ENCRYPTED FILE-----\n{}-----END AGE ENCRYPTED FILE-----\n",
            base64(&locked)
        ),
    )
    .unwrap();
    std::fs::write(env.path("mixed.txt"), format!("{recipient}\n{lower}\n")).unwrap();
    std::fs::write(
        env.path("public.txt"),
        format!("# restore key\n{recipient}\n"),
    )
    .unwrap();
    for f in ["mixed.txt", "public.txt"] {
        std::fs::set_permissions(env.path(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let policy = |name: &str, encryption: &str| {
        let text = format!(
            "[[target]]\nname = \"local\"\nurl = \"./repo\"\n\n[encryption]\n{encryption}\n"
        );
        std::fs::write(env.path(name), text).unwrap();
    };
    policy("p-recipient.toml", &format!("recipients = [\"{key}\"]"));
    policy("p-string.toml", &format!("recipients = \"{key}\""));
    policy("p-identity.toml", &format!("identity_file = \"{key}\""));

    let recipient_is_key = format!(
        "ivault: the recipient given is a secret key (an age identity), not a public recipient; {GIVE_PUBLIC}"
    );
    let file_holds_key = |f: &str| {
        format!("ivault: recipients file {f} holds a secret key (an age identity), not only public recipients; {GIVE_PUBLIC}")
    };
    let file_is_encrypted = |f: &str| {
        format!("ivault: recipients file {f} is an age-encrypted file (a passphrase-protected identity, perhaps), not a list of public recipients; {GIVE_PUBLIC}")
    };
    let identity_is_key = format!(
        "ivault: the identity given is a secret key itself, not the path of a file; {KEEP_IN_FILE}"
    );
    let public_as_identity = |f: &str| {
        format!("ivault: {f}: the identity file holds a public recipient (age1…) where a secret key belongs; use a file written by `ivault key generate` or `age-keygen`")
    };
    let both = format!("{recipient},{key}");
    let snapshots = ["snapshots", "--repo", "repo"];
    let restore = [
        "restore",
        "latest",
        "--repo",
        "repo",
        "--identity",
        "id.txt",
        "--to",
        "o.sqlite",
    ];
    let no_repo = format!("ivault: no ivault repository at {NOT_SHOWN}; create one with `ivault init {NOT_SHOWN}` or check the path");
    let with_env = |mut c: Case, k: &'static str, v: &str| {
        c.env.push((k, v.to_string()));
        c
    };
    let cases = vec![
        // --recipient, in any case, alone or beside a real recipient.
        case(&["init", "r1", "--recipient", &key], KEY, recipient_is_key.clone()),
        case(&["init", "r1", "--recipient", &lower], KEY, recipient_is_key.clone()),
        case(&["init", "r1", "--recipient", &both], KEY, recipient_is_key.clone()),
        case(&["backup", db, "--to", "repo", "--recipient", &key], KEY, recipient_is_key.clone()),
        // --recipients-file: an identity file, a list with a key in it, protected identities,
        // and the key itself where the file's path belongs.
        case(&["init", "r1", "--recipients-file", "id.txt"], KEY, file_holds_key("id.txt")),
        case(&["init", "r1", "--recipients-file", "mixed.txt"], KEY, file_holds_key("mixed.txt")),
        case(&["backup", db, "--to", "repo", "--recipients-file", "id.txt"], KEY, file_holds_key("id.txt")),
        case(&["init", "r1", "--recipients-file", "locked.txt"], KEY, file_is_encrypted("locked.txt")),
        case(&["init", "r1", "--recipients-file", "armored.txt"], KEY, file_is_encrypted("armored.txt")),
        case(
            &["init", "r1", "--recipients-file", &key],
            KEY,
            format!("ivault: the recipients file given is a secret key itself, not the path of a file; {GIVE_PUBLIC}"),
        ),
        // --identity and IVAULT_IDENTITY: the key itself, or a recipients file.
        case(&[&snapshots[..], &["--identity", &key]].concat(), KEY, identity_is_key.clone()),
        with_env(
            case(&["restore", "latest", "--repo", "repo", "--to", "out.sqlite"], KEY, identity_is_key.clone()),
            "IVAULT_IDENTITY",
            &key,
        ),
        case(&["check", "--repo", "repo", "--identity", "mixed.txt"], KEY, public_as_identity("mixed.txt")),
        case(&[&snapshots[..], &["--identity", "public.txt"]].concat(), KEY, public_as_identity("public.txt")),
        // A key where the passphrase belongs is not echoed either.
        with_env(
            case(
                &[&snapshots[..], &["--identity", "locked.txt"]].concat(),
                KEY,
                "ivault: wrong passphrase for identity file locked.txt; check IVAULT_PASSPHRASE or retype it",
            ),
            "IVAULT_PASSPHRASE",
            &key,
        ),
        // Policies.
        case(&["init", "local", "--policy", "p-recipient.toml"], KEY, recipient_is_key.clone()),
        case(
            &[&snapshots[..], &["--policy", "p-identity.toml"]].concat(),
            KEY,
            identity_is_key.clone(),
        ),
        case(
            &[&snapshots[..], &["--policy", "p-string.toml"]].concat(),
            POLICY,
            format!("ivault: policy p-string.toml, line 6: invalid type: string \"{NOT_SHOWN}\", expected a sequence; fix the file"),
        ),
        with_env(
            case(
                &[&snapshots[..], &["--identity", "id.txt"]].concat(),
                POLICY,
                format!("ivault: cannot read policy {NOT_SHOWN}: it does not exist; check the path given to --policy"),
            ),
            "IVAULT_POLICY",
            &key,
        ),
        // Anywhere else a key is pasted by mistake, the sentence that quotes it hides it.
        case(
            &["backup", &key, "--to", "repo"],
            SOURCE,
            format!("ivault: source database {NOT_SHOWN} does not exist; check the path"),
        ),
        case(
            &["-vv", "backup", db, "--to", &lower],
            REPOSITORY,
            no_repo.clone(),
        ),
        with_env(
            case(&["snapshots", "--identity", "id.txt"], REPOSITORY, no_repo.clone()),
            "IVAULT_REPO",
            &key,
        ),
        case(
            &[&restore[..], &["--source", &key]].concat(),
            USAGE,
            format!("ivault: repo holds no snapshot of {NOT_SHOWN}; run `ivault backup` first"),
        ),
        case(
            &["backup", db, "--to", "repo", "--compression", &key],
            USAGE,
            format!("error: invalid value '{NOT_SHOWN}' for '--compression <COMPRESSION>': invalid digit found in string\n\nFor more information, try '--help'."),
        ),
        case(
            &["backup", db, "--to", "repo", "--to", &key],
            PARTIAL,
            format!("ivault: backup to {NOT_SHOWN} failed: {}", &no_repo["ivault: ".len()..]),
        ),
        case(
            &["backup", db, "--to", "repo", "--to", &key, "--json"],
            PARTIAL,
            format!("ivault: backup to {NOT_SHOWN} failed: {}", &no_repo["ivault: ".len()..]),
        ),
        case(
            &[&key],
            USAGE,
            format!("error: unrecognized subcommand '{NOT_SHOWN}'\n\nUsage: ivault [OPTIONS] <COMMAND>\n\nFor more information, try '--help'."),
        ),
    ];
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let vars: Vec<(&str, &str)> = c.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r: Run = env.run_env(&args, &vars);
        let what = c.args.join(" ").replace(&key, "KEY").replace(&lower, "key");
        assert_eq!(r.code, c.code, "{what}: {}", r.stderr);
        // Only the backup that partly succeeded reports something on stdout (the good target).
        if c.code != PARTIAL {
            assert_eq!(r.stdout, "", "{what}");
        }
        assert_no_leak(&what, &r.stdout, &key);
        assert_eq!(r.stderr.trim_end(), c.stderr, "{what}");
        assert_no_leak(&what, &r.stderr, &key);
    }
    assert!(!env.path("r1").join("config").exists());

    // Nor does the job history keep it.
    let state = rusqlite::Connection::open(env.path("state/state.sqlite")).unwrap();
    let rows: Vec<String> = state
        .prepare("SELECT kind || ' ' || coalesce(source, '') || ' ' || coalesce(target, '') || ' ' || coalesce(error, '') FROM jobs")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(rows.iter().any(|r| r.contains(NOT_SHOWN)), "{rows:?}");
    assert_no_leak("the job history", &rows.join("\n"), &key);
}
