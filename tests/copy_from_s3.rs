//! `ivault copy` out of an S3 repository: to a local directory and to another bucket. Every
//! copied snapshot restores from the destination, with the destination's own key, to exactly
//! the bytes the database had when it was backed up.

mod common;
use common::s3::S3Server;
use common::Env;
use invoice_vault::sample::{self, JournalMode};

const SOURCE: &str = "s3://primary/r";

struct Setup {
    _server: S3Server,
    env: Env,
    /// The source repository's identity.
    key: String,
    /// The destination's identity and recipient.
    dest_key: String,
    dest_recipient: String,
    /// SHA-256 of the database at each snapshot, oldest first.
    states: Vec<String>,
}

/// An S3 repository with a full and an incremental snapshot, and a second key for the
/// destination.
fn setup() -> Setup {
    let server = S3Server::start();
    server.bucket("primary");
    server.bucket("offsite");
    let env = Env::with_vars(server.env());
    let (key, recipient) = env.new_key("source.txt");
    env.run(&["init", SOURCE, "--recipient", &recipient]).ok();
    let db = env.database("db.sqlite", 4, JournalMode::Wal);
    let dbs = db.to_str().unwrap();
    env.backup_report(dbs, SOURCE, &["--tag", "nightly"]);
    let mut states = vec![common::sha256_file(&db)];
    sample::day_of_business(&db, 5).unwrap();
    env.backup_report(dbs, SOURCE, &[]);
    states.push(common::sha256_file(&db));
    // Copies never read the database.
    std::fs::remove_file(&db).unwrap();
    let (dest_key, dest_recipient) = env.new_key("dest.txt");
    Setup {
        _server: server,
        env,
        key,
        dest_key,
        dest_recipient,
        states,
    }
}

impl Setup {
    /// Copies every snapshot of the source to `dest` (made here), then restores each copy
    /// from `dest` and checks its bytes, and checks every byte `dest` holds.
    fn copies_and_restores_to(&self, dest: &str) {
        self.env
            .run(&["init", dest, "--recipient", &self.dest_recipient])
            .ok();
        let r = self
            .env
            .run(&[
                "copy",
                "--from",
                SOURCE,
                "--identity",
                &self.key,
                "--to",
                dest,
                "--json",
            ])
            .ok()
            .json();
        let copied = r["snapshots"].as_array().unwrap();
        assert_eq!(copied.len(), 2, "{r}");
        assert!(copied.iter().all(|c| c["already_present"] == false), "{r}");

        let copies = self
            .env
            .run(&[
                "snapshots",
                "--repo",
                dest,
                "--identity",
                &self.dest_key,
                "--json",
            ])
            .ok()
            .json();
        let copies = copies.as_array().unwrap();
        assert_eq!(copies.len(), 2);
        assert_eq!(copies[0]["tags"], serde_json::json!(["nightly"]));
        for (copy, want) in copies.iter().zip(&self.states) {
            assert_eq!(&copy["database_sha256"], want);
            let id = copy["id"].as_str().unwrap();
            let out = self.env.path(&format!("{id}.sqlite"));
            self.env.restore(id, dest, &self.dest_key, &out);
            assert_eq!(&common::sha256_file(&out), want, "snapshot {id} in {dest}");
        }
        let c = self.env.check(dest, &self.dest_key, true);
        assert_eq!(c.code, 0, "{}", c.stdout);
        assert_eq!(c.json()["problems"], serde_json::json!([]));
    }
}

#[test]
fn copies_from_s3_to_a_local_directory_restore_to_the_same_bytes() {
    let s = setup();
    let local = s.env.path("local-copy");
    s.copies_and_restores_to(local.to_str().unwrap());
}

#[test]
fn copies_from_s3_to_another_bucket_restore_to_the_same_bytes() {
    let s = setup();
    s.copies_and_restores_to("s3://offsite/r");
}
