//! Sets and tables of SHA-256 digests that need not fit in memory. Digests are kept in sorted
//! runs; of each run only the first four bytes of every digest stay in memory (4 bytes a
//! digest, with a table of where each bucket of prefixes starts), while the records
//! themselves stay in memory below a share of a budget and past it go to an unnamed file,
//! read one record at a time when a prefix matches.
//!
//! A [`DigestRuns`] set gathers new ids in a small hash set that becomes a run when it fills,
//! and merges a run into the one before it once it reaches a quarter of its size, so that a
//! lookup probes a few runs at most. A [`DigestTable`] is one run with a 4-byte value after
//! each digest, built once and then looked up.

use crate::hash::{DigestSet, Hash};
use crate::sorted_runs::{next_record, SortedRuns};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Ids gathered in the hash set, at most, before they become a run.
const FRESH_IDS: usize = 1 << 16;
/// Prefixes per bucket of a run's start table, about.
const PER_BUCKET: usize = 8;

pub struct DigestRuns {
    dir: PathBuf,
    /// A run keeps its ids in memory up to an eighth of this many bytes, and sorting what is
    /// gathered holds up to this many; past that they go to disk.
    budget: usize,
    fresh: DigestSet,
    /// Largest first.
    runs: Vec<Run>,
}

impl DigestRuns {
    /// An empty set whose runs of more than an eighth of `budget_bytes` of ids keep them in
    /// unnamed files in `dir`.
    pub fn new(dir: &Path, budget_bytes: usize) -> Self {
        DigestRuns {
            dir: dir.to_path_buf(),
            budget: budget_bytes,
            fresh: DigestSet::default(),
            runs: Vec::new(),
        }
    }

    /// Gathers ids in any order, repeats allowed, sorted through runs on disk when they are
    /// more than the budget holds; [`Gather::done`] gives the set.
    pub fn gather(dir: &Path, budget_bytes: usize) -> Gather {
        Gather {
            set: DigestRuns::new(dir, budget_bytes),
            sorter: SortedRuns::new(dir, budget_bytes),
        }
    }

    pub fn contains(&self, id: &Hash) -> io::Result<bool> {
        if self.fresh.contains(id) {
            return Ok(true);
        }
        for run in &self.runs {
            if run.find(id, &mut |_| true)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Adds `id`; false if it was there already.
    pub fn insert(&mut self, id: Hash) -> io::Result<bool> {
        if self.contains(&id)? {
            return Ok(false);
        }
        self.fresh.insert(id);
        if self.fresh.len() >= self.fresh_limit() {
            self.freeze()?;
        }
        Ok(true)
    }

    pub fn is_empty(&self) -> bool {
        self.fresh.is_empty() && self.runs.iter().all(|r| r.len() == 0)
    }

    /// Adds every id of `other`.
    pub fn absorb(&mut self, mut other: DigestRuns) -> io::Result<()> {
        if self.is_empty() {
            *self = other;
            return Ok(());
        }
        for id in std::mem::take(&mut other.fresh) {
            self.insert(id)?;
        }
        // Runs may share ids with ours: merging keeps one of each.
        self.runs.append(&mut other.runs);
        self.runs.sort_by_key(|r| std::cmp::Reverse(r.len()));
        self.merge_small_runs()
    }

    /// Ids held at once in the hash set: a sixteenth of the budget's ids, at least a few.
    fn fresh_limit(&self) -> usize {
        (self.budget / 32 / 16).clamp(16, FRESH_IDS)
    }

    fn freeze(&mut self) -> io::Result<()> {
        let mut ids: Vec<Hash> = self.fresh.drain().collect();
        ids.sort_unstable();
        let run = self.build(ids.len(), ids.into_iter().map(Ok))?;
        self.runs.push(run);
        self.merge_small_runs()
    }

    fn merge_small_runs(&mut self) -> io::Result<()> {
        while let [.., before, last] = &self.runs[..] {
            if last.len() * 4 < before.len() {
                break;
            }
            let (Some(last), Some(before)) = (self.runs.pop(), self.runs.pop()) else {
                break;
            };
            let len = last.len() + before.len();
            let merged = Merged {
                a: before.into_records()?.peekable(),
                b: last.into_records()?.peekable(),
            };
            let run = self.build(len, merged)?;
            self.runs.push(run);
        }
        Ok(())
    }

    /// A run of `ids`, sorted, of which there are at most `len`. Merging holds both runs and
    /// the new one: a run keeps its ids in memory only while that costs a small share of the
    /// budget.
    fn build(&self, len: usize, ids: impl Iterator<Item = io::Result<Hash>>) -> io::Result<Run> {
        Run::build(&self.dir, len * 32 <= self.budget / 8, len, ids)
    }
}

/// A [`DigestRuns`] being gathered.
pub struct Gather {
    set: DigestRuns,
    sorter: SortedRuns<32>,
}

impl Gather {
    pub fn push(&mut self, id: Hash) -> io::Result<()> {
        self.sorter.push(id)
    }

    pub fn done(self) -> io::Result<DigestRuns> {
        let Gather { mut set, sorter } = self;
        if !sorter.is_empty() {
            let len = sorter.len() as usize;
            let run = set.build(len, sorter.sorted()?)?;
            set.runs.push(run);
        }
        Ok(set)
    }
}

/// Digests with a 4-byte value each, several values to a digest allowed (which packs hold a
/// blob), gathered in any order and then only looked up: one run, its records in memory up to
/// the budget and on disk past it.
pub struct DigestTable {
    run: Run<36>,
}

impl DigestTable {
    pub fn gather(dir: &Path, budget_bytes: usize) -> GatherTable {
        GatherTable {
            dir: dir.to_path_buf(),
            budget: budget_bytes,
            sorter: SortedRuns::new(dir, budget_bytes),
        }
    }

    /// The values of `id`, in order; none if it was never pushed.
    pub fn values(&self, id: &Hash) -> io::Result<Vec<u32>> {
        let mut values = Vec::new();
        self.run.find(id, &mut |r| {
            values.push(u32::from_be_bytes([r[32], r[33], r[34], r[35]]));
            false
        })?;
        Ok(values)
    }
}

/// A [`DigestTable`] being gathered.
pub struct GatherTable {
    dir: PathBuf,
    budget: usize,
    sorter: SortedRuns<36>,
}

impl GatherTable {
    pub fn push(&mut self, id: &Hash, value: u32) -> io::Result<()> {
        let mut r = [0u8; 36];
        r[..32].copy_from_slice(id);
        r[32..].copy_from_slice(&value.to_be_bytes());
        self.sorter.push(r)
    }

    pub fn done(self) -> io::Result<DigestTable> {
        let len = self.sorter.len() as usize;
        // The sorted list is read from its runs as the table is written: held only if both
        // fit the budget together.
        let held = len * 36 * 2 <= self.budget;
        let run = Run::build(&self.dir, held, len, self.sorter.sorted()?)?;
        Ok(DigestTable { run })
    }
}

/// The first four bytes of a digest, or of a record that starts with one.
fn prefix(id: &[u8]) -> u32 {
    u32::from_be_bytes([id[0], id[1], id[2], id[3]])
}

enum Sink<const N: usize> {
    Held(Vec<[u8; N]>),
    Disk(BufWriter<File>),
}

enum Records<const N: usize> {
    Held(Vec<[u8; N]>),
    /// Records back to back, `N` bytes each.
    Disk(File),
}

/// Sorted records without repeats, keyed by the digest they start with, with the first four
/// bytes of each in memory.
struct Run<const N: usize = 32> {
    /// Prefixes whose top `bits` bits are `b` are at `starts[b]..starts[b + 1]`.
    starts: Vec<u32>,
    bits: u32,
    prefixes: Vec<u32>,
    records: Records<N>,
}

impl<const N: usize> Run<N> {
    /// A run of `records`, sorted, of which there are at most `len` (repeats are dropped);
    /// they stay in memory when `held`, else go to an unnamed file in `dir`.
    fn build(
        dir: &Path,
        held: bool,
        len: usize,
        records: impl Iterator<Item = io::Result<[u8; N]>>,
    ) -> io::Result<Self> {
        let mut prefixes = Vec::with_capacity(len);
        let mut last: Option<[u8; N]> = None;
        let mut sink = if held {
            Sink::Held(Vec::with_capacity(len))
        } else {
            Sink::Disk(BufWriter::with_capacity(
                1 << 18,
                tempfile::tempfile_in(dir)?,
            ))
        };
        for r in records {
            let r = r?;
            if last == Some(r) {
                continue;
            }
            last = Some(r);
            prefixes.push(prefix(&r));
            match &mut sink {
                Sink::Held(v) => v.push(r),
                Sink::Disk(w) => w.write_all(&r)?,
            }
        }
        let records = match sink {
            Sink::Held(v) => Records::Held(v),
            Sink::Disk(w) => Records::Disk(w.into_inner().map_err(|e| e.into_error())?),
        };
        let mut bits = 0;
        while bits < 24 && (PER_BUCKET << bits) < prefixes.len() {
            bits += 1;
        }
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0;
        for bucket in 0..=(1u64 << bits) {
            while at < prefixes.len() && u64::from(bucket_of(prefixes[at], bits)) < bucket {
                at += 1;
            }
            starts.push(at as u32);
        }
        Ok(Run {
            starts,
            bits,
            prefixes,
            records,
        })
    }

    fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Hands `each` every record that starts with `id`, in order, until it returns true;
    /// returns whether it did.
    fn find(&self, id: &Hash, each: &mut dyn FnMut(&[u8; N]) -> bool) -> io::Result<bool> {
        let p = prefix(id);
        let b = bucket_of(p, self.bits) as usize;
        let (from, to) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        let first = from + self.prefixes[from..to].partition_point(|&q| q < p);
        for i in first..to {
            if self.prefixes[i] != p {
                break;
            }
            let mut stored = [0u8; N];
            let record = match &self.records {
                Records::Held(v) => &v[i],
                Records::Disk(f) => {
                    f.read_exact_at(&mut stored, (i * N) as u64)?;
                    &stored
                }
            };
            if record[..32] == id[..] && each(record) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The records in order, the run given up.
    fn into_records(self) -> io::Result<Box<dyn Iterator<Item = io::Result<[u8; N]>>>> {
        Ok(match self.records {
            Records::Held(v) => Box::new(v.into_iter().map(Ok)),
            Records::Disk(mut f) => {
                f.rewind()?;
                let mut reader = BufReader::with_capacity(1 << 18, f);
                Box::new(std::iter::from_fn(move || {
                    next_record(&mut reader).transpose()
                }))
            }
        })
    }
}

fn bucket_of(prefix: u32, bits: u32) -> u32 {
    match bits {
        0 => 0,
        b => prefix >> (32 - b),
    }
}

type IdStream = std::iter::Peekable<Box<dyn Iterator<Item = io::Result<Hash>>>>;

/// Two sorted streams as one (an id in both comes twice; `build` drops the repeat).
struct Merged {
    a: IdStream,
    b: IdStream,
}

impl Iterator for Merged {
    type Item = io::Result<Hash>;

    fn next(&mut self) -> Option<Self::Item> {
        let take_a = match (self.a.peek(), self.b.peek()) {
            (None, None) => return None,
            (Some(_), None) | (Some(Err(_)), _) => true,
            (None, Some(_)) | (_, Some(Err(_))) => false,
            (Some(Ok(x)), Some(Ok(y))) => x <= y,
        };
        if take_a {
            self.a.next()
        } else {
            self.b.next()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    fn id(i: u32) -> Hash {
        sha256(&i.to_le_bytes())
    }

    fn set_of(dir: &Path, budget: usize, ids: impl Iterator<Item = u32>) -> DigestRuns {
        let mut gather = DigestRuns::gather(dir, budget);
        for i in ids {
            gather.push(id(i)).unwrap();
        }
        gather.done().unwrap()
    }

    /// An id that shares its first four bytes with `id(i)` but differs after.
    fn twin(i: u32) -> Hash {
        let mut t = id(i);
        t[31] ^= 1;
        t
    }

    #[test]
    fn ids_are_found_in_memory_and_on_disk_and_others_are_not() {
        for budget in [1 << 22, 640] {
            let dir = tempfile::tempdir().unwrap();
            let mut set = set_of(dir.path(), budget, (0..3000).chain(0..100));
            assert!(!set.is_empty());
            for i in (0..3000).step_by(7) {
                assert!(set.contains(&id(i)).unwrap());
                assert!(!set.contains(&twin(i)).unwrap());
            }
            for i in 3000..10_000 {
                assert!(set.insert(id(i)).unwrap(), "{i} is new");
                assert!(!set.insert(id(i)).unwrap(), "{i} was just added");
            }
            for i in 0..10_000 {
                assert!(!set.insert(id(i)).unwrap(), "{i} was added before");
                assert!(!set.contains(&twin(i)).unwrap());
            }
            let on_disk = set
                .runs
                .iter()
                .any(|r| matches!(r.records, Records::Disk(_)));
            assert_eq!(on_disk, budget == 640, "budget {budget}");
            // A few runs at most, however many times the hash set filled.
            assert!(set.runs.len() <= 6, "{} runs", set.runs.len());
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn a_table_gives_every_value_of_an_id_from_memory_or_disk() {
        for budget in [1 << 20, 500] {
            let dir = tempfile::tempdir().unwrap();
            let mut gather = DigestTable::gather(dir.path(), budget);
            for i in (0..2000).rev() {
                gather.push(&id(i), i).unwrap();
                if i % 10 == 0 {
                    gather.push(&id(i), i + 7).unwrap();
                    gather.push(&twin(i), 99).unwrap();
                }
            }
            let table = gather.done().unwrap();
            let on_disk = matches!(table.run.records, Records::Disk(_));
            assert_eq!(on_disk, budget == 500);
            for i in 0..2000 {
                let expected = if i % 10 == 0 { vec![i, i + 7] } else { vec![i] };
                assert_eq!(table.values(&id(i)).unwrap(), expected, "{i}");
            }
            assert_eq!(table.values(&twin(10)).unwrap(), [99]);
            assert!(table.values(&twin(11)).unwrap().is_empty());
            assert!(table.values(&id(2000)).unwrap().is_empty());
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
        let dir = tempfile::tempdir().unwrap();
        let empty = DigestTable::gather(dir.path(), 500).done().unwrap();
        assert!(empty.values(&id(1)).unwrap().is_empty());
    }

    #[test]
    fn absorbing_another_set_keeps_one_of_each_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = set_of(dir.path(), 640, 0..500);
        let mut b = DigestRuns::new(dir.path(), 640);
        for i in 400..900 {
            assert!(b.insert(id(i)).unwrap());
        }
        a.absorb(b).unwrap();
        for i in 0..900 {
            assert!(!a.insert(id(i)).unwrap(), "{i}");
        }
        assert!(a.insert(id(900)).unwrap());
        let total: usize = a.runs.iter().map(Run::len).sum::<usize>() + a.fresh.len();
        assert!(total <= 901 + 100, "{total} ids held for 901");

        let mut empty = DigestRuns::new(dir.path(), 640);
        assert!(empty.is_empty());
        let mut c = DigestRuns::new(dir.path(), 640);
        assert!(c.insert(id(1)).unwrap());
        empty.absorb(c).unwrap();
        assert!(!empty.insert(id(1)).unwrap());
    }
}
