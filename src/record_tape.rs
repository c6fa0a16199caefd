//! Fixed-size records kept in the order they were pushed, to be read through more than once:
//! in memory up to a budget, the older ones in an unnamed temporary file past it. For lists
//! that are already in order as they are made, where a [`crate::sorted_runs::SortedRuns`]
//! would only sort them again.

use crate::sorted_runs::next_record;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

/// Bytes written to and read back from the file at a time.
const BUFFER: usize = 256 * 1024;

pub struct RecordTape<const N: usize> {
    dir: PathBuf,
    /// Records held at most before the held ones are appended to the file.
    budget: usize,
    held: Vec<[u8; N]>,
    /// Records written out, oldest first, and how many.
    spilled: Option<(BufWriter<File>, u64)>,
}

impl<const N: usize> RecordTape<N> {
    /// Holds at most `budget_bytes` of records in memory; the rest go to an unnamed file in
    /// `dir`, which vanishes when closed, also when the process dies.
    pub fn new(dir: &Path, budget_bytes: usize) -> Self {
        RecordTape {
            dir: dir.to_path_buf(),
            budget: (budget_bytes / N).max(1),
            held: Vec::new(),
            spilled: None,
        }
    }

    pub fn push(&mut self, record: [u8; N]) -> io::Result<()> {
        if self.held.len() == self.budget {
            let (file, count) = match &mut self.spilled {
                Some(s) => s,
                None => self.spilled.insert((
                    BufWriter::with_capacity(BUFFER, tempfile::tempfile_in(&self.dir)?),
                    0,
                )),
            };
            // A replay reads through a duplicate of the file, which shares its offset.
            file.seek(io::SeekFrom::End(0))?;
            for r in self.held.drain(..) {
                file.write_all(&r)?;
            }
            *count += self.budget as u64;
        }
        if self.held.capacity() == 0 {
            // Reserved whole: growing by doubling would hold twice the budget while copying.
            self.held.reserve_exact(self.budget);
        }
        self.held.push(record);
        Ok(())
    }

    /// Every record pushed so far, in the order pushed; can be called again.
    pub fn replay(&mut self) -> io::Result<impl Iterator<Item = io::Result<[u8; N]>> + '_> {
        let mut from_file = None;
        if let Some((file, count)) = &mut self.spilled {
            file.flush()?;
            let mut f = file.get_ref().try_clone()?;
            f.rewind()?;
            from_file = Some((BufReader::with_capacity(BUFFER, f), *count));
        }
        let file_records = from_file.into_iter().flat_map(|(mut reader, count)| {
            (0..count).map(move |_| {
                next_record::<N>(&mut reader)?
                    .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
            })
        });
        Ok(file_records.chain(self.held.iter().map(|r| Ok(*r))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: u32) -> Vec<[u8; 8]> {
        (0..n)
            .map(|i| {
                let mut r = [0u8; 8];
                r[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
                r[4..].copy_from_slice(&i.to_be_bytes());
                r
            })
            .collect()
    }

    #[test]
    fn records_come_back_in_the_order_pushed_every_time_held_or_spilled() {
        for (n, budget) in [
            (0, 800),
            (50, 800),
            (100, 800),
            (1001, 800),
            (10_000, 8 * 333),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let input = records(n);
            let mut tape = RecordTape::<8>::new(dir.path(), budget);
            for r in &input {
                tape.push(*r).unwrap();
            }
            for _ in 0..2 {
                let out: Vec<[u8; 8]> = tape.replay().unwrap().collect::<io::Result<_>>().unwrap();
                assert_eq!(out, input, "{n} records, budget {budget}");
            }
            assert_eq!(tape.spilled.is_some(), n as usize * 8 > budget);
            // Pushed after a replay, records still follow the ones before.
            let more = records(n + 700);
            for r in &more[n as usize..] {
                tape.push(*r).unwrap();
            }
            let out: Vec<[u8; 8]> = tape.replay().unwrap().collect::<io::Result<_>>().unwrap();
            assert_eq!(out, more, "{n} records and 700 more, budget {budget}");
            // The file is unnamed: nothing is left in the directory, even while it is open.
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn pushing_after_a_replay_left_half_read_appends_at_the_end() {
        // More than the read-ahead on disk, so that stopping early leaves the shared offset
        // in the middle of the file.
        let dir = tempfile::tempdir().unwrap();
        let input = records(100_000);
        let mut tape = RecordTape::<8>::new(dir.path(), 8 * 1000);
        for r in &input[..90_000] {
            tape.push(*r).unwrap();
        }
        assert_eq!(tape.replay().unwrap().take(5).count(), 5);
        for r in &input[90_000..] {
            tape.push(*r).unwrap();
        }
        let out: Vec<[u8; 8]> = tape.replay().unwrap().collect::<io::Result<_>>().unwrap();
        assert_eq!(out, input);
    }
}
