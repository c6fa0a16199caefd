//! Sorting more fixed-size records than should be held in memory. Records are gathered up to
//! a budget; past it, each budget's worth is sorted and written to an unnamed temporary file
//! (a run), and reading merges the runs. Records sort by their bytes: a caller puts its key
//! first, big-endian. Below the budget nothing touches the disk.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Memory a list may hold before it goes to disk, unless `IVAULT_LIST_MEMORY` (bytes) says
/// otherwise: a restore's read plan, a backup's known blobs, check's blobs and segments.
const LIST_MEMORY: usize = 16 << 20;

pub fn list_memory() -> usize {
    ["IVAULT_LIST_MEMORY", "IVAULT_PLAN_MEMORY"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .unwrap_or(LIST_MEMORY)
}

/// Bytes read ahead from each run while merging, at most.
const RUN_READ_AHEAD: usize = 256 * 1024;

/// Runs merged at once: past this many, the runs so far are merged into one first, so that
/// neither open files nor read-ahead buffers grow with the input.
const MAX_RUNS: usize = 64;

pub struct SortedRuns<const N: usize> {
    dir: PathBuf,
    /// Records held at most before they are written out as a run.
    budget: usize,
    held: Vec<[u8; N]>,
    runs: Vec<File>,
    pushed: u64,
}

impl<const N: usize> SortedRuns<N> {
    /// Holds at most `budget_bytes` of records in memory; runs go to unnamed files in `dir`,
    /// which vanish when closed, also when the process dies.
    pub fn new(dir: &Path, budget_bytes: usize) -> Self {
        SortedRuns {
            dir: dir.to_path_buf(),
            budget: (budget_bytes / N).max(1),
            held: Vec::new(),
            runs: Vec::new(),
            pushed: 0,
        }
    }

    pub fn push(&mut self, record: [u8; N]) -> io::Result<()> {
        if self.held.len() == self.budget {
            self.spill()?;
        }
        if self.held.capacity() == 0 {
            // Reserved whole: growing by doubling would hold twice the budget while copying.
            self.held.reserve_exact(self.budget);
        }
        self.held.push(record);
        self.pushed += 1;
        Ok(())
    }

    /// Records pushed so far.
    pub fn len(&self) -> u64 {
        self.pushed
    }

    pub fn is_empty(&self) -> bool {
        self.pushed == 0
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.runs.len() + 1 >= MAX_RUNS {
            let merged = merge(std::mem::take(&mut self.runs), self.read_ahead())?;
            let run = self.write_run(merged)?;
            self.runs.push(run);
        }
        sort(&mut self.held);
        let held = std::mem::take(&mut self.held);
        let run = self.write_run(held.into_iter().map(Ok))?;
        self.runs.push(run);
        Ok(())
    }

    fn write_run(&self, records: impl Iterator<Item = io::Result<[u8; N]>>) -> io::Result<File> {
        let mut file = BufWriter::with_capacity(RUN_READ_AHEAD, tempfile::tempfile_in(&self.dir)?);
        for r in records {
            file.write_all(&r?)?;
        }
        let mut file = file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok(file)
    }

    /// Read-ahead per run: the runs together read ahead no more than the budget holds.
    fn read_ahead(&self) -> usize {
        (self.budget * N / self.runs.len().max(1)).clamp(16 * 1024, RUN_READ_AHEAD)
    }

    /// Every record pushed, in order.
    pub fn sorted(mut self) -> io::Result<Sorted<N>> {
        if self.runs.is_empty() {
            sort(&mut self.held);
            return Ok(Sorted::Held(self.held.into_iter()));
        }
        if !self.held.is_empty() {
            self.spill()?;
        }
        let read_ahead = self.read_ahead();
        merge(self.runs, read_ahead)
    }
}

/// Sorts records by their bytes, as `sort_unstable` would, but compares the first 16 bytes as
/// one integer: ids and pack places nearly always differ there, so most comparisons need no
/// call to `memcmp` (a restore's plan sorts three lists of a record per page).
fn sort<const N: usize>(records: &mut [[u8; N]]) {
    fn head<const N: usize>(r: &[u8; N]) -> u128 {
        let mut k = [0u8; 16];
        let n = N.min(16);
        k[..n].copy_from_slice(&r[..n]);
        u128::from_be_bytes(k)
    }
    records.sort_unstable_by(|a, b| {
        head(a)
            .cmp(&head(b))
            .then_with(|| a[N.min(16)..].cmp(&b[N.min(16)..]))
    });
}

fn merge<const N: usize>(runs: Vec<File>, read_ahead: usize) -> io::Result<Sorted<N>> {
    let mut readers = Vec::with_capacity(runs.len());
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for (i, run) in runs.into_iter().enumerate() {
        let mut reader = BufReader::with_capacity(read_ahead, run);
        if let Some(first) = next_record(&mut reader)? {
            heap.push(Reverse((first, i)));
        }
        readers.push(reader);
    }
    Ok(Sorted::Merged { readers, heap })
}

/// The records of a [`SortedRuns`], in order.
pub enum Sorted<const N: usize> {
    Held(std::vec::IntoIter<[u8; N]>),
    Merged {
        readers: Vec<BufReader<File>>,
        heap: BinaryHeap<Reverse<([u8; N], usize)>>,
    },
}

impl<const N: usize> Iterator for Sorted<N> {
    type Item = io::Result<[u8; N]>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Sorted::Held(records) => records.next().map(Ok),
            Sorted::Merged { readers, heap } => {
                let Reverse((record, run)) = heap.pop()?;
                match next_record(&mut readers[run]) {
                    Ok(Some(next)) => heap.push(Reverse((next, run))),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
                Some(Ok(record))
            }
        }
    }
}

/// The next record of a file of `N`-byte records, or none at its end.
pub(crate) fn next_record<const N: usize>(reader: &mut impl Read) -> io::Result<Option<[u8; N]>> {
    let mut record = [0u8; N];
    match reader.read_exact(&mut record) {
        Ok(()) => Ok(Some(record)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: u32, seed: u32) -> Vec<[u8; 8]> {
        // A fixed permutation with repeats: every value below n/2 twice.
        (0..n)
            .map(|i| {
                let v = (i.wrapping_mul(2_654_435_761).wrapping_add(seed)) % (n / 2);
                let mut r = [0u8; 8];
                r[..4].copy_from_slice(&v.to_be_bytes());
                r[4..].copy_from_slice(&i.to_be_bytes());
                r
            })
            .collect()
    }

    fn sort_through(budget_bytes: usize, input: &[[u8; 8]]) -> (Vec<[u8; 8]>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = SortedRuns::<8>::new(dir.path(), budget_bytes);
        for r in input {
            runs.push(*r).unwrap();
        }
        assert_eq!(runs.len(), input.len() as u64);
        let spilled = runs.runs.len();
        let out = runs
            .sorted()
            .unwrap()
            .collect::<io::Result<Vec<_>>>()
            .unwrap();
        // Runs are unnamed: nothing is left in the directory, even while they are open.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        (out, spilled)
    }

    #[test]
    fn records_come_back_sorted_whether_held_or_merged_from_runs() {
        let input = records(10_000, 7);
        let mut expected = input.clone();
        expected.sort();
        let (held, spilled) = sort_through(1 << 20, &input);
        assert_eq!(spilled, 0);
        assert_eq!(held, expected);
        // 100 records a run: 100 runs, merged into one at 64 so that no more are open at once.
        let (merged, spilled) = sort_through(800, &input);
        assert_eq!(spilled, 99 - 62);
        assert_eq!(merged, expected);
        let (merged, spilled) = sort_through(8000, &input);
        assert_eq!(spilled, 9);
        assert_eq!(merged, expected);
        // A last run that is not full.
        let (merged, _) = sort_through(8 * 333, &input);
        assert_eq!(merged, expected);
        assert_eq!(sort_through(800, &[]).0, Vec::<[u8; 8]>::new());
    }

    #[test]
    fn records_longer_than_the_compared_head_sort_by_every_byte() {
        // 36-byte records whose first 16 bytes take three values and the rest many: ties in
        // the head must be settled by the tail, as a plain byte comparison would.
        let input: Vec<[u8; 36]> = (0u32..3000)
            .map(|i| {
                let mut r = [0u8; 36];
                r[15] = (i % 3) as u8;
                r[16..20].copy_from_slice(&(i.wrapping_mul(2_654_435_761) % 97).to_be_bytes());
                r[32..].copy_from_slice(&i.to_be_bytes());
                r
            })
            .collect();
        let mut expected = input.clone();
        expected.sort();
        let mut sorted = input.clone();
        sort(&mut sorted);
        assert_eq!(sorted, expected);
    }
}
