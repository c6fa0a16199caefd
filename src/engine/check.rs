//! Check: verify a repository without trusting it. Structure: every index and manifest opens,
//! every pack an index lists exists with the recorded size, every blob a snapshot needs is
//! indexed. With read-data: every pack (or a random subset) is downloaded, its hash checked,
//! decrypted, and every blob in it decompressed and hashed. Damage never stops the check;
//! each problem names the object and the snapshots it affects.

use crate::engine::context::Context;
use crate::error::{Error, Result};
use crate::repo::binary::{sha256, Hash};
use crate::repo::index::{Index, IndexedPack};
use crate::repo::keys::Keyring;
use crate::repo::pack::{BlobKind, PackTable};
use crate::repo::{codec, pack, parse_hash, Repository};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    None,
    All,
    /// Percentage of packs, chosen at random.
    Subset(f64),
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The damaged object's key, e.g. `data/ab/ab12…`.
    pub object: String,
    pub what: String,
    /// Ids of the snapshots that cannot be restored because of it.
    pub affected_snapshots: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct CheckReport {
    pub ok: bool,
    pub snapshots: usize,
    pub indexes: usize,
    pub packs: usize,
    pub packs_read: usize,
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
}

/// Opens the repository and key and checks it.
pub fn run(
    ctx: &Context,
    repo: &str,
    identity: Option<&std::path::Path>,
    read_data: ReadData,
) -> Result<CheckReport> {
    let (repo, keys) = ctx.open_repo_with_key(repo, identity)?;
    check(&repo, &keys, read_data)
}

pub fn check(repo: &Repository, keys: &Keyring, read_data: ReadData) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let mut problems: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    let mut problem = |object: String, what: String, affected: &[String]| {
        let e = problems
            .entry(object)
            .or_insert_with(|| (what, BTreeSet::new()));
        e.1.extend(affected.iter().cloned());
    };

    let stored: HashMap<String, u64> = repo.list_ids("data")?.into_iter().collect();
    let index_ids = repo.list_ids("index")?;
    let snapshot_ids = repo.list_ids("snapshots")?;
    report.indexes = index_ids.len();
    report.snapshots = snapshot_ids.len();

    let mut index = Index::default();
    // Check compares each pack with its table; the shared index keeps only what reads need.
    let mut tables: HashMap<Hash, PackTable> = HashMap::new();
    for (id, _) in &index_ids {
        match repo.read_index(keys, id) {
            Ok(recs) => {
                for r in recs {
                    index.add(&r);
                    tables.entry(r.id).or_insert(r.table);
                }
            }
            Err(e @ Error::Key(_)) => return Err(e),
            Err(e) => problem(format!("index/{id}"), e.message().to_string(), &[]),
        }
    }
    report.packs = index.packs.len();

    // Packs the index promises but storage lacks or holds truncated.
    let mut bad_packs: HashMap<u32, String> = HashMap::new();
    for (i, p) in index.packs.iter().enumerate() {
        let id = hex::encode(p.id);
        match stored.get(&id) {
            None => {
                bad_packs.insert(i as u32, "pack is missing".into());
            }
            Some(&size) if size != p.size => {
                bad_packs.insert(
                    i as u32,
                    format!("pack has {size} bytes, the index records {}", p.size),
                );
            }
            _ => {}
        }
    }
    let indexed: HashSet<String> = index.packs.iter().map(|p| hex::encode(p.id)).collect();
    for id in stored.keys().filter(|id| !indexed.contains(*id)) {
        report.warnings.push(format!(
            "pack {id} is in no index (left by an interrupted backup); it is harmless and prune will remove it"
        ));
    }

    // Tree segments, read from their packs leniently so one bad pack does not hide the rest.
    let mut manifests = Vec::new();
    for (id, _) in &snapshot_ids {
        match repo.load_manifest(keys, id) {
            Ok(m) => manifests.push((id.clone(), m)),
            Err(e @ Error::Key(_)) => return Err(e),
            Err(e) => problem(
                format!("snapshots/{id}"),
                e.message().to_string(),
                std::slice::from_ref(id),
            ),
        }
    }
    let tree_blobs: HashSet<Hash> = manifests
        .iter()
        .flat_map(|(_, m)| m.segments.iter().filter_map(|s| parse_hash(s)))
        .collect();
    // Every tree pack is read (they are small), so a copy of a segment is found wherever it is.
    let mut segments: HashMap<Hash, Vec<u8>> = HashMap::new();
    let mut tree_packs_read: HashSet<u32> = HashSet::new();
    for (i, p) in index.packs.iter().enumerate() {
        let i = i as u32;
        if p.kind != BlobKind::Tree || bad_packs.contains_key(&i) {
            continue;
        }
        tree_packs_read.insert(i);
        match open_pack(repo, keys, p, &tables) {
            Ok(blobs) => {
                for (h, bytes) in blobs {
                    if tree_blobs.contains(&h) {
                        segments.insert(h, bytes);
                    }
                }
            }
            Err(why) => {
                bad_packs.insert(i, why);
            }
        }
    }

    // Read-data: download, decrypt and hash every blob of the chosen packs.
    let chosen: Vec<u32> = match read_data {
        ReadData::None => Vec::new(),
        ReadData::All => (0..index.packs.len() as u32).collect(),
        ReadData::Subset(pct) => {
            use rand::seq::SliceRandom;
            let mut all: Vec<u32> = (0..index.packs.len() as u32).collect();
            all.shuffle(&mut rand::thread_rng());
            let n = ((all.len() as f64 * pct / 100.0).ceil() as usize)
                .clamp(1.min(all.len()), all.len());
            all.truncate(n);
            all
        }
    };
    let to_read: Vec<u32> = chosen
        .into_iter()
        .filter(|p| !bad_packs.contains_key(p) && !tree_packs_read.contains(p))
        .collect();
    report.packs_read = to_read.len() + tree_packs_read.len();
    let found = Mutex::new(Vec::new());
    let queue = Mutex::new(to_read.into_iter());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some(p) = next else { return };
                if let Err(why) = open_pack(repo, keys, index.pack(p), &tables) {
                    found
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((p, why));
                }
            });
        }
    });
    for (p, why) in found.into_inner().unwrap_or_else(|e| e.into_inner()) {
        bad_packs.insert(p, why);
    }

    // A snapshot is affected by a bad pack when some blob it needs has no intact copy.
    let mut affects: HashMap<u32, BTreeSet<String>> = HashMap::new();
    for (id, m) in &manifests {
        let mut pages = 0u64;
        let mut blob_ok =
            |h: &Hash, what: &str, problem: &mut dyn FnMut(String, String, &[String])| {
                let locs: Vec<_> = index.locations(h).collect();
                if locs.is_empty() {
                    problem(
                        format!("{what} blob {}", hex::encode(h)),
                        format!("no index lists this {what} blob"),
                        std::slice::from_ref(id),
                    );
                } else if locs.iter().all(|l| bad_packs.contains_key(&l.pack)) {
                    for l in locs {
                        affects.entry(l.pack).or_default().insert(id.clone());
                    }
                }
            };
        for s in &m.segments {
            let Some(h) = parse_hash(s) else {
                problem(
                    format!("snapshots/{id}"),
                    "manifest holds a malformed segment id".into(),
                    std::slice::from_ref(id),
                );
                continue;
            };
            blob_ok(&h, "tree", &mut problem);
            let Some(bytes) = segments.get(&h) else {
                continue;
            };
            for chunk in bytes.chunks_exact(32) {
                pages += 1;
                let mut page = [0u8; 32];
                page.copy_from_slice(chunk);
                blob_ok(&page, "data", &mut problem);
            }
        }
        let all_segments_read = m
            .segments
            .iter()
            .filter_map(|s| parse_hash(s))
            .all(|h| segments.contains_key(&h));
        if all_segments_read && pages != m.page_count {
            problem(
                format!("snapshots/{id}"),
                format!("tree lists {pages} pages, the manifest {}", m.page_count),
                std::slice::from_ref(id),
            );
        }
    }
    for (p, why) in bad_packs {
        let affected: Vec<String> = affects.remove(&p).unwrap_or_default().into_iter().collect();
        problem(pack::key(&index.pack(p).id), why, &affected);
    }

    report.problems = problems
        .into_iter()
        .map(|(object, (what, affected))| Problem {
            object,
            what,
            affected_snapshots: affected.into_iter().collect(),
        })
        .collect();
    report.ok = report.problems.is_empty();
    Ok(report)
}

/// Downloads, verifies and decrypts a pack; checks its table against the index and every blob
/// against its id. Returns the blobs, or why the pack is damaged.
fn open_pack(
    repo: &Repository,
    keys: &Keyring,
    p: &IndexedPack,
    tables: &HashMap<Hash, PackTable>,
) -> std::result::Result<Vec<(Hash, Vec<u8>)>, String> {
    let key = pack::key(&p.id);
    let sealed = repo.get(&key).map_err(|e| e.message().to_string())?;
    if sha256(&sealed) != p.id {
        return Err("pack content does not match its id (damaged or truncated)".into());
    }
    let plain = codec::decrypt(keys, &sealed).map_err(|e| match e {
        codec::OpenError::WrongKey => "pack is not encrypted to this identity".to_string(),
        codec::OpenError::Damaged(why) => format!("pack does not decrypt: {why}"),
    })?;
    let (layout, frames) =
        pack::parse(&plain).map_err(|_| "pack table is malformed".to_string())?;
    let table = tables
        .get(&p.id)
        .ok_or_else(|| "pack is in no index".to_string())?;
    if !layout.same_layout(table) {
        return Err("pack table differs from the index".into());
    }
    // Blob ids come from the index; hashing every blob proves the pack holds exactly those.
    let mut out = Vec::new();
    let mut off = 0usize;
    for f in &table.frames {
        let end = off + f.compressed_len as usize;
        let data = pack::open_frame(&frames[off..end], f)?;
        if !pack::verify_frame(&data, f).is_empty() {
            return Err("a blob in the pack does not match its id".into());
        }
        let mut b = 0usize;
        for (id, len) in &f.blobs {
            out.push((*id, data[b..b + *len as usize].to_vec()));
            b += *len as usize;
        }
        off = end;
    }
    Ok(out)
}
