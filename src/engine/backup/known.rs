//! The blob ids a backup deduplicates against: those the repository held when the backup
//! began, as a sorted array (32 bytes an id, against about 66 in a hash set that grows by
//! doubling), and those stored since, in a hash set.

use crate::hash::{DigestSet, Hash, SortedDigests};

#[derive(Default)]
pub(crate) struct Known {
    held: SortedDigests,
    added: DigestSet,
}

impl Known {
    /// The repository holds `held` (in any order, repeats allowed).
    pub fn new(held: Vec<Hash>) -> Self {
        Known {
            held: SortedDigests::of(held),
            added: DigestSet::default(),
        }
    }

    /// Notes `id` as stored; false if it was known already.
    pub fn insert(&mut self, id: Hash) -> bool {
        !self.held.contains(&id) && self.added.insert(id)
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.added.is_empty()
    }

    /// Notes what a backup that deduplicated only against itself (`own`) stored.
    pub fn absorb(&mut self, own: Known) {
        if self.is_empty() {
            // Moved, not copied: a first full backup would otherwise hold its ids twice.
            *self = own;
        } else {
            let Known { held, added } = self;
            let stored = own.held.into_entries().into_iter().map(|(h, _)| h);
            added.extend(stored.chain(own.added).filter(|h| !held.contains(h)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    #[test]
    fn an_id_is_new_once_whether_held_from_the_start_or_added() {
        let id = |i: u32| sha256(&i.to_le_bytes());
        let mut known = Known::new(vec![id(1), id(2), id(1)]);
        assert!(!known.is_empty());
        assert!(!known.insert(id(1)));
        assert!(known.insert(id(3)));
        assert!(!known.insert(id(3)));
        let mut own = Known::default();
        assert!(own.insert(id(2)) && own.insert(id(4)));
        known.absorb(own);
        assert!(!known.insert(id(4)));
        assert!(known.insert(id(5)));

        let mut empty = Known::default();
        assert!(empty.is_empty());
        let mut own = Known::default();
        assert!(own.insert(id(7)));
        empty.absorb(own);
        assert!(!empty.insert(id(7)));
        assert!(empty.insert(id(8)));
    }
}
