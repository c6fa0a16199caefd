//! Which copy to read of a blob stored more than once (after a full backup, a copy, a
//! repack). A frame is decompressed whole, so a read costs the frames it touches, not the
//! blobs it wants: a new full's frames hold nothing a restore of it does not want, while an old
//! chain's frames hold mostly pages replaced since; and when tracing changes, the day's own
//! incremental holds that day's pages side by side, where a later full scatters them over the
//! whole file. Every wanted blob's copies are weighed first (`want`), then each blob's copy is
//! chosen in two rounds: alone (`first`, noting it with `take`), then preferring the frames the
//! first round already reads (`last_rank`), so that a blob does not pull in a frame of its own.

use super::index::{BlobLocation, Index};

/// Tallies by pack slot and frame number, both small and dense, so a plan's call per page
/// indexes vectors instead of hashing (a restore's plan makes one for every page).
#[derive(Default)]
pub(crate) struct CopyChooser {
    /// Per pack slot, per frame.
    frames: Vec<Vec<FrameTally>>,
    /// Bytes wanted per pack slot.
    packs: Vec<u64>,
}

#[derive(Default, Clone, Copy)]
struct FrameTally {
    /// The frame holds the only copy of some wanted blob.
    only: bool,
    /// Bytes wanted from it.
    wanted: u64,
    /// Bytes the first round took from it (the only copies included).
    taken: u64,
}

/// Higher is cheaper: frames read anyway first; then frames with more of their bytes wanted
/// (a copy in a frame half of which is wanted costs twice what one in a frame wanted whole
/// does); then those of the pack serving more (a new full's frames against the last
/// incremental's, both wanted whole).
pub(crate) type Score = (bool, u64, u64);

impl CopyChooser {
    /// The tally of `l`'s frame; none for a frame past the end of its pack (a damaged index,
    /// which the read reports), so that no such number can size a vector.
    fn tally_mut(&mut self, index: &Index, l: &BlobLocation) -> Option<&mut FrameTally> {
        let (pack, frame) = (l.pack.0 as usize, l.frame as usize);
        let count = index.pack(l.pack).frames.len();
        if frame >= count {
            return None;
        }
        if self.frames.len() <= pack {
            self.frames.resize_with(pack + 1, Vec::new);
        }
        let frames = &mut self.frames[pack];
        if frames.len() < count {
            frames.resize(count, FrameTally::default());
        }
        frames.get_mut(frame)
    }

    fn tally(&self, l: &BlobLocation) -> FrameTally {
        self.frames
            .get(l.pack.0 as usize)
            .and_then(|f| f.get(l.frame as usize))
            .copied()
            .unwrap_or_default()
    }

    /// A wanted blob (once for every use) has a copy at `l`; `only` when it is its only one.
    pub(crate) fn want(&mut self, index: &Index, l: &BlobLocation, only: bool) {
        let len = u64::from(l.len);
        let Some(t) = self.tally_mut(index, l) else {
            return;
        };
        t.only |= only;
        t.wanted += len;
        if only {
            t.taken += len;
        }
        let pack = l.pack.0 as usize;
        if self.packs.len() <= pack {
            self.packs.resize(pack + 1, 0);
        }
        self.packs[pack] += len;
    }

    /// The first round's choice among a blob's `copies`.
    pub(crate) fn first<'a>(
        &self,
        index: &Index,
        copies: impl IntoIterator<Item = &'a BlobLocation>,
    ) -> Option<&'a BlobLocation> {
        copies.into_iter().max_by_key(|l| self.score(index, l))
    }

    /// The first round took `l`.
    pub(crate) fn take(&mut self, index: &Index, l: &BlobLocation) {
        if let Some(t) = self.tally_mut(index, l) {
            t.taken += u64::from(l.len);
        }
    }

    /// What the last round ranks a copy by, highest best: bytes the first round took from
    /// its frame, then its score.
    pub(crate) fn last_rank(&self, index: &Index, l: &BlobLocation) -> (u64, Score) {
        (self.tally(l).taken, self.score(index, l))
    }

    /// Orders a blob's `copies` best first by the first round's measure alone, for reads
    /// made one at a time as they come (a snapshot read in place), where no later round is.
    pub(crate) fn rank(&self, index: &Index, copies: &mut [BlobLocation]) {
        copies.sort_by_key(|l| std::cmp::Reverse(self.score(index, l)));
    }

    fn score(&self, index: &Index, l: &BlobLocation) -> Score {
        let FrameTally { only, wanted, .. } = self.tally(l);
        let size = index
            .pack(l.pack)
            .frames
            .get(l.frame as usize)
            .map_or(u64::MAX, |f| u64::from(f.uncompressed_len).max(1));
        // Per mille of the frame wanted; blobs used twice may count past the whole.
        let share = wanted.saturating_mul(1000) / size;
        let by_pack = self.packs.get(l.pack.0 as usize).copied().unwrap_or(0);
        (only, share, by_pack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::ids::PackId;
    use crate::repo::index::{PackRecord, PackSlot};
    use crate::repo::pack::{BlobKind, FrameInfo, PackTable};

    const PAGE: u32 = 4096;

    fn id(n: u32) -> crate::hash::Hash {
        crate::hash::sha256(&n.to_le_bytes())
    }

    /// Packs of frames, each frame a list of blob numbers.
    fn index_of(packs: &[Vec<Vec<u32>>]) -> Index {
        let mut index = Index::default();
        for (p, frames) in packs.iter().enumerate() {
            index.add(&PackRecord {
                id: PackId(id(1_000_000 + p as u32)),
                size: 1 << 20,
                table: PackTable {
                    kind: BlobKind::Data,
                    frames: frames
                        .iter()
                        .map(|blobs| FrameInfo {
                            compressed_len: 100,
                            uncompressed_len: blobs.len() as u32 * PAGE,
                            blobs: blobs.iter().map(|&b| (id(b), PAGE)).collect(),
                        })
                        .collect(),
                },
            });
        }
        index.seal();
        index
    }

    /// The pack and frame each wanted blob is read from, after both rounds.
    fn chosen(index: &Index, wanted: &[u32]) -> Vec<(u32, u32)> {
        let copies = |b: u32| -> Vec<BlobLocation> { index.locations(&id(b)).collect() };
        let mut c = CopyChooser::default();
        for &b in wanted {
            let all = copies(b);
            all.iter().for_each(|l| c.want(index, l, all.len() == 1));
        }
        for &b in wanted {
            let all = copies(b);
            if let Some(l) = c.first(index, &all) {
                c.take(index, l);
            }
        }
        wanted
            .iter()
            .map(|&b| {
                let all = copies(b);
                let l = all
                    .iter()
                    .max_by_key(|l| c.last_rank(index, l))
                    .expect("a copy");
                (l.pack.0, l.frame)
            })
            .collect()
    }

    #[test]
    fn a_frame_wanted_whole_wins_over_one_mostly_replaced() {
        // Pack 0: an old frame where blobs 1-2 sit among six replaced pages. Pack 1: a new
        // full's frame with 1-4, all wanted.
        let index = index_of(&[
            vec![vec![1, 2, 50, 51, 52, 53, 54, 55]],
            vec![vec![1, 2, 3, 4]],
        ]);
        assert_eq!(chosen(&index, &[1, 2, 3, 4]), vec![(1, 0); 4]);
        assert_eq!(index.pack(PackSlot(0)).frames.len(), 1);
    }

    #[test]
    fn copies_read_one_at_a_time_come_best_first() {
        let index = index_of(&[
            vec![vec![1, 2, 50, 51, 52, 53, 54, 55]],
            vec![vec![1, 2, 3, 4]],
        ]);
        let mut c = CopyChooser::default();
        for b in [1, 2, 3, 4] {
            let all: Vec<BlobLocation> = index.locations(&id(b)).collect();
            all.iter().for_each(|l| c.want(&index, l, all.len() == 1));
        }
        let mut copies: Vec<BlobLocation> = index.locations(&id(1)).collect();
        assert_eq!(copies[0].pack.0, 0, "listed in pack order");
        c.rank(&index, &mut copies);
        let packs: Vec<u32> = copies.iter().map(|l| l.pack.0).collect();
        assert_eq!(packs, [1, 0]);
    }

    #[test]
    fn a_frame_read_anyway_takes_the_blobs_it_also_holds() {
        // Blob 9 is only in pack 0's frame, so that frame is read; blobs 1 and 2 are there too,
        // and in a frame of pack 1 that is otherwise unwanted.
        let index = index_of(&[vec![vec![1, 2, 9]], vec![vec![1, 2, 60, 61]]]);
        assert_eq!(chosen(&index, &[1, 2, 9]), vec![(0, 0); 3]);
    }

    #[test]
    fn the_second_round_gathers_blobs_into_frames_already_read() {
        // Blobs 1-3 are in frame 0 of pack 0 (4 of its 6 blobs wanted, with 7) and in pack 2's
        // frame (3 of 9): the first round takes pack 0's. Blob 7 alone would be read from the
        // one-blob frame 1 of pack 1, wanted whole; but pack 0's frame is read anyway.
        let index = index_of(&[
            vec![vec![1, 2, 3, 7, 70, 71]],
            vec![vec![80, 81], vec![7]],
            vec![vec![1, 2, 3, 90, 91, 92, 93, 94, 95]],
        ]);
        assert_eq!(chosen(&index, &[1, 2, 3, 7]), vec![(0, 0); 4]);
    }

    #[test]
    fn of_two_frames_wanted_whole_the_larger_pack_wins() {
        // The last incremental's frame and a new full's, both wanted whole: the full's pack
        // serves the rest of the snapshot too.
        let index = index_of(&[vec![vec![5, 6]], vec![vec![1, 2], vec![5, 6], vec![3, 4]]]);
        assert_eq!(
            chosen(&index, &[1, 2, 3, 4, 5, 6]),
            vec![(1, 0), (1, 0), (1, 2), (1, 2), (1, 1), (1, 1)]
        );
    }

    #[test]
    fn a_frame_past_the_end_of_its_pack_is_weighed_as_nothing() {
        // A damaged index could name any frame: it must not size the chooser's tallies.
        let index = index_of(&[vec![vec![1, 2]]]);
        let bogus = BlobLocation {
            pack: PackSlot(0),
            frame: u32::MAX,
            offset: 0,
            len: PAGE,
        };
        let good: BlobLocation = index.locations(&id(1)).next().unwrap();
        let mut c = CopyChooser::default();
        c.want(&index, &bogus, false);
        c.want(&index, &good, false);
        c.take(&index, &bogus);
        assert_eq!(c.frames[0].len(), 1);
        assert_eq!(c.first(&index, [&bogus, &good]), Some(&good));
        assert_eq!(c.last_rank(&index, &bogus).0, 0);
    }
}
