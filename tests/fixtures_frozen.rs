//! Fixture repositories are frozen: `tests/fixtures/SHA256SUMS` records the SHA-256 of every
//! file under `tests/fixtures/`, and this test fails when a file changes, appears or
//! disappears.
//!
//! A fixture is what an earlier ivault wrote, and later versions must keep reading it as it
//! is. A change to the repository format needs a format version bump and a NEW fixture
//! directory (`tests/fixtures/format-vN/`, with its lines added to SHA256SUMS), never an edit
//! or a regeneration of an existing one: a regenerated fixture tests only that today's code
//! reads what today's code writes.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const SUMS: &str = "SHA256SUMS";

/// `hash  path` lines as `sha256sum` writes them; `#` lines are comments.
fn recorded() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join(SUMS)).unwrap();
    let mut sums = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (hash, path) = line
            .split_once("  ")
            .unwrap_or_else(|| panic!("{SUMS} line {}: not `hash  path`: {line:?}", i + 1));
        assert!(
            hash.len() == 64
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{SUMS} line {}: not a lowercase SHA-256: {hash:?}",
            i + 1
        );
        let before = sums.insert(path.to_string(), hash.to_string());
        assert!(before.is_none(), "{SUMS} lists {path} twice");
    }
    sums
}

fn on_disk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            on_disk(&path, root, out);
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if rel != SUMS {
            let hash = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
            out.insert(rel, hash);
        }
    }
}

#[test]
fn every_fixture_file_matches_its_recorded_hash() {
    let recorded = recorded();
    let mut actual = BTreeMap::new();
    on_disk(Path::new(FIXTURES), Path::new(FIXTURES), &mut actual);
    assert!(!recorded.is_empty(), "{SUMS} lists no files");

    let changed: Vec<&String> = recorded
        .iter()
        .filter(|(path, hash)| actual.get(*path).is_some_and(|h| h != *hash))
        .map(|(path, _)| path)
        .collect();
    let missing: Vec<&String> = recorded
        .keys()
        .filter(|p| !actual.contains_key(*p))
        .collect();
    let added: Vec<&String> = actual
        .keys()
        .filter(|p| !recorded.contains_key(*p))
        .collect();
    assert!(
        changed.is_empty() && missing.is_empty() && added.is_empty(),
        "fixtures are frozen (see tests/fixtures/{SUMS}): a format change needs a version bump \
         and a new fixture directory, never an edit of an existing one.\n\
         changed: {changed:?}\nmissing: {missing:?}\nnot listed in {SUMS}: {added:?}"
    );
}
