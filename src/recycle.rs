//! Buffers handed back for reuse. A backup passes megabyte buffers from one thread to the next
//! (pages read, then frames to compress) at the speed of the disk; freed, each goes back to the
//! kernel (blocks of 1 MiB and more are mapped on their own, `host::return_freed_memory`) or
//! to another thread's arena, and the next is faulted in as fresh zeroed pages, which cost a
//! tenth of a backup's CPU. A recycler keeps a few spent buffers for the next taker instead.

use std::sync::Mutex;

pub(crate) struct Recycler {
    spent: Mutex<Vec<Vec<u8>>>,
    /// At most this many buffers are kept: as many as can be in flight at once.
    keep: usize,
}

impl Recycler {
    pub(crate) const fn new(keep: usize) -> Self {
        Recycler {
            spent: Mutex::new(Vec::new()),
            keep,
        }
    }

    /// An empty buffer with room for at least `capacity` bytes.
    pub(crate) fn take(&self, capacity: usize) -> Vec<u8> {
        let spent = self.spent.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match spent {
            Some(mut buf) => {
                buf.reserve(capacity);
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Drops every buffer kept, when the work that passed them around is done.
    pub(crate) fn release(&self) {
        self.spent.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Hands `buf` back; its contents are dropped.
    pub(crate) fn give(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        if spent.len() < self.keep && buf.capacity() > 0 {
            spent.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_and_the_rest_are_dropped() {
        let r = Recycler::new(1);
        let mut a = r.take(1000);
        a.extend_from_slice(b"invoice");
        let at = a.as_ptr();
        r.give(a);
        r.give(Vec::with_capacity(10));
        let b = r.take(100);
        assert!(b.is_empty() && b.capacity() >= 1000);
        assert_eq!(b.as_ptr(), at);
        // Only one was kept: the next is new, with the room asked for.
        assert!(r.take(5000).capacity() >= 5000);
        r.give(b);
        r.release();
        assert_ne!(r.take(10).capacity(), 1000);
    }
}
