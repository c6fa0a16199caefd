//! Copies blobs into new packs and indexes them, so that the mostly unused packs they came
//! from can be deleted later. Every blob is read through the checked reader (pack against its
//! id, blob against its own), recompressed frame by frame and stored like a backup's packs.

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::repo::index::Index;
use crate::repo::keys::Keyring;
use crate::repo::reader;
use crate::repo::writer::{Frame, SnapshotWriter};
use crate::repo::{codec, Repository};
use std::sync::mpsc::sync_channel;

/// zstd level of repacked frames, as a backup's default.
const LEVEL: i32 = 3;

/// What a repack stored.
#[derive(Debug, Default)]
pub struct Repacked {
    pub packs: usize,
    pub bytes: u64,
}

pub fn copy_blobs(
    repo: &Repository,
    keys: &Keyring,
    index: &Index,
    blobs: impl IntoIterator<Item = Hash>,
) -> Result<Repacked> {
    let mut writer = SnapshotWriter::new(repo, &repo.config().recipients)?;
    let (tx, rx) = sync_channel::<Frame>(4);
    let mut damaged = Vec::new();
    let (stored, read) = std::thread::scope(|s| {
        let store = s.spawn(|| writer.store_frames(rx));
        // Each call hands over the wanted blobs of one stored frame: all of one kind.
        let read = reader::read_blobs(repo, keys, index, blobs, 2, &mut damaged, |blobs| {
            let Some((first, _)) = blobs.first() else {
                return Ok(());
            };
            let kind = index
                .locate(first)
                .map(|l| index.pack(l.pack).kind)
                .ok_or_else(|| Error::Internal("a blob being repacked left the index".into()))?;
            let plain: Vec<u8> = blobs.iter().flat_map(|(_, b)| b.iter().copied()).collect();
            let frame = Frame {
                kind,
                compressed: codec::compress(&plain, LEVEL)?,
                uncompressed_len: plain.len() as u32,
                blobs: blobs.iter().map(|(h, b)| (*h, b.len() as u32)).collect(),
            };
            tx.send(frame).map_err(|_| Error::Cancelled)
        });
        drop(tx);
        let stored = store
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("the repack writer panicked".into())));
        (stored, read)
    });
    // A failed store explains a stopped read better than the read does.
    stored?;
    read?;
    let packs = writer.write_index(&mut |_| Ok(()))?;
    Ok(Repacked {
        packs,
        bytes: writer.bytes_stored(),
    })
}
