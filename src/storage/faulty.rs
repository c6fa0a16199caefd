//! Wraps any storage and makes chosen calls fail, to test that every layer above survives
//! errors at every step. Faults fire on the N-th call of an operation; `unexercised` lets a
//! test insist that each planned fault actually happened.

use super::{ObjectInfo, Storage, StorageError};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    List,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Fail with this error without touching the inner storage.
    Fail(StorageError),
    /// Store only the first `n` bytes, then report the error: a torn write on a broken target.
    Truncate(usize, StorageError),
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub op: Op,
    /// 1-based: the N-th call of `op` fails.
    pub nth: usize,
    pub kind: FaultKind,
}

#[derive(Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    state: Mutex<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    faults: Vec<(Fault, bool)>,
    calls: [usize; 4],
}

impl FaultyStorage {
    pub fn new(inner: Arc<dyn Storage>, faults: Vec<Fault>) -> Self {
        FaultyStorage {
            inner,
            state: Mutex::new(FaultState {
                faults: faults.into_iter().map(|f| (f, false)).collect(),
                calls: [0; 4],
            }),
        }
    }

    /// Faults that were planned but never fired.
    pub fn unexercised(&self) -> Vec<Fault> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.faults
            .iter()
            .filter(|(_, hit)| !hit)
            .map(|(f, _)| f.clone())
            .collect()
    }

    /// How many calls of `op` have been made.
    pub fn calls(&self, op: Op) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).calls[op as usize]
    }

    fn next_fault(&self, op: Op) -> Option<FaultKind> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.calls[op as usize] += 1;
        let n = st.calls[op as usize];
        st.faults
            .iter_mut()
            .find(|(f, hit)| !hit && f.op == op && f.nth == n)
            .map(|(f, hit)| {
                *hit = true;
                f.kind.clone()
            })
    }
}

impl Storage for FaultyStorage {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        match self.next_fault(Op::Put) {
            None => self.inner.put(key, data),
            Some(FaultKind::Fail(e)) => Err(e),
            Some(FaultKind::Truncate(n, e)) => {
                self.inner.put(key, &data[..n.min(data.len())])?;
                Err(e)
            }
        }
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        match self.next_fault(Op::Get) {
            None => self.inner.get(key),
            Some(FaultKind::Fail(e)) => Err(e),
            Some(FaultKind::Truncate(n, e)) => {
                let mut v = self.inner.get(key)?;
                v.truncate(n);
                if v.is_empty() {
                    Err(e)
                } else {
                    Ok(v)
                }
            }
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        match self.next_fault(Op::List) {
            None => self.inner.list(prefix),
            Some(FaultKind::Fail(e) | FaultKind::Truncate(_, e)) => Err(e),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.next_fault(Op::Delete) {
            None => self.inner.delete(key),
            Some(FaultKind::Fail(e) | FaultKind::Truncate(_, e)) => Err(e),
        }
    }

    fn set_probe_object(&self, key: &str) {
        self.inner.set_probe_object(key)
    }

    fn sweep_incomplete(&self, older_than: std::time::Duration) -> Result<usize, StorageError> {
        self.inner.sweep_incomplete(older_than)
    }

    fn local_dir(&self) -> Option<std::path::PathBuf> {
        self.inner.local_dir()
    }
}
