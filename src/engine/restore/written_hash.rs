//! The SHA-256 of a file written out of order, taken while it is written: a thread hashes the
//! longest written prefix, reading it back while it is still in the page cache, so a restore
//! does not end with a second full read of the file. Packs of a full backup hold pages in
//! order, so the prefix follows the writers closely; what an incremental scatters is hashed
//! once the writers are done.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Condvar, Mutex};

/// Bytes read back at a time.
const READ_BACK: usize = 1 << 20;

#[derive(Default)]
pub(crate) struct WrittenHash {
    state: Mutex<Written>,
    changed: Condvar,
}

#[derive(Default)]
struct Written {
    /// Written byte ranges not yet hashed: start → end.
    ranges: BTreeMap<u64, u64>,
    /// The writers are done: `Some(true)` when every byte was written, `Some(false)` when
    /// they gave up (and the hash is not wanted).
    done: Option<bool>,
    /// Where the hash has got to: only a range that starts there is worth waking it for.
    hashed_to: u64,
}

impl WrittenHash {
    fn lock(&self) -> std::sync::MutexGuard<'_, Written> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Each `(start, len)` range is written. One call per batch of writes, and a wake-up only
    /// when the hash can go on: a restore of a long chain writes a few hundred thousand runs
    /// of a page or two, and waking the hashing thread for each cost a second of CPU.
    pub(crate) fn written_runs(&self, runs: &[(u64, u64)]) {
        let mut w = self.lock();
        let mut wake = false;
        for &(start, len) in runs.iter().filter(|r| r.1 > 0) {
            w.ranges.insert(start, start + len);
            wake |= start == w.hashed_to;
        }
        drop(w);
        if wake {
            self.changed.notify_one();
        }
    }

    /// The writers are done; `complete` says whether every byte was written.
    pub(crate) fn finish(&self, complete: bool) {
        self.lock().done = Some(complete);
        self.changed.notify_one();
    }

    /// Hashes `file` (`len` bytes) as its prefix is written, and the rest once the writers
    /// finish. Returns `None` when they gave up. Whatever the bookkeeping, every byte from
    /// 0 to `len` is read and hashed exactly once, in order.
    pub(crate) fn hash(
        &self,
        file: &File,
        len: u64,
        read_error: &dyn Fn(std::io::Error) -> Error,
    ) -> Result<Option<[u8; 32]>> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; READ_BACK];
        let mut pos = 0u64;
        loop {
            let until = {
                let mut w = self.lock();
                loop {
                    if let Some(mut end) = w.ranges.remove(&pos) {
                        while let Some(next) = w.ranges.remove(&end) {
                            end = next;
                        }
                        break Some(end);
                    }
                    match w.done {
                        Some(false) => return Ok(None),
                        Some(true) => break None,
                        None => {
                            w.hashed_to = pos;
                            w = self.changed.wait(w).unwrap_or_else(|p| p.into_inner());
                        }
                    }
                }
            };
            let end = until.unwrap_or(len).min(len);
            while pos < end {
                let want = ((end - pos) as usize).min(READ_BACK);
                let n = file.read_at(&mut buf[..want], pos).map_err(read_error)?;
                if n == 0 {
                    return Err(read_error(std::io::Error::from(
                        std::io::ErrorKind::UnexpectedEof,
                    )));
                }
                hasher.update(&buf[..n]);
                pos += n as u64;
            }
            if until.is_none() || pos >= len {
                // Bytes past `len` (none, unless the file grew) are not the snapshot's.
                return Ok(Some(hasher.finalize().into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[test]
    fn out_of_order_writes_hash_like_the_whole_file() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        file.set_len(data.len() as u64).unwrap();
        let tracker = WrittenHash::default();
        // Written in 10 KiB pieces, in an order that leaves gaps until the end.
        let piece = 10_000usize;
        let mut order: Vec<usize> = (0..data.len().div_ceil(piece)).collect();
        order.sort_by_key(|i| (i % 3, *i));
        let err = |e: std::io::Error| Error::Internal(e.to_string().into());
        let got = std::thread::scope(|s| {
            let h = s.spawn(|| tracker.hash(&file, data.len() as u64, &err));
            for i in order {
                let (a, b) = (i * piece, ((i + 1) * piece).min(data.len()));
                file.write_all_at(&data[a..b], a as u64).unwrap();
                tracker.written_runs(&[(a as u64, (b - a) as u64)]);
            }
            tracker.finish(true);
            h.join().unwrap()
        });
        assert_eq!(got.unwrap(), Some(sha(&data)));
    }

    #[test]
    fn batches_written_back_to_front_hash_like_the_whole_file() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let tracker = WrittenHash::default();
        let err = |e: std::io::Error| Error::Internal(e.to_string().into());
        // Batches of four 4 KiB runs, two apart, the last batch first: only the batch that
        // holds the start wakes the hash, and it must still take in every range.
        let runs: Vec<(u64, u64)> = (0..data.len() as u64)
            .step_by(4096)
            .map(|a| (a, 4096.min(data.len() as u64 - a)))
            .collect();
        let mut batches: Vec<Vec<(u64, u64)>> = (0..2)
            .flat_map(|odd| {
                let mine: Vec<(u64, u64)> = runs.iter().copied().skip(odd).step_by(2).collect();
                mine.chunks(4).map(<[_]>::to_vec).collect::<Vec<_>>()
            })
            .collect();
        batches.reverse();
        let got = std::thread::scope(|s| {
            let h = s.spawn(|| tracker.hash(&file, data.len() as u64, &err));
            for b in &batches {
                tracker.written_runs(b);
            }
            tracker.finish(true);
            h.join().unwrap()
        });
        assert_eq!(got.unwrap(), Some(sha(&data)));
    }

    #[test]
    fn writers_that_give_up_stop_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let tracker = WrittenHash::default();
        let err = |e: std::io::Error| Error::Internal(e.to_string().into());
        let got = std::thread::scope(|s| {
            let h = s.spawn(|| tracker.hash(&file, 1 << 30, &err));
            tracker.finish(false);
            h.join().unwrap()
        });
        assert_eq!(got.unwrap(), None);
    }
}
