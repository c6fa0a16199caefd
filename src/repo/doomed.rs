//! Doomed packs: `doomed/<pack id>` objects with which a prune announces that it will delete
//! a pack once a grace period has passed (docs/FORMAT.md, "Pruning"). The markers are plain
//! JSON so that a backup host, which holds only the public recipients, sees them in a listing
//! and stops deduplicating against the packs they name.

use super::ids::{ObjectId, PackId};
use super::{storage_error, Repository};
use crate::error::{Error, Result};
use crate::hash::parse_hex;
use crate::storage::StorageError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

const DIR: &str = "doomed/";

/// When and where a pack was marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    /// RFC 3339 UTC, by the clock of the host that ran the prune.
    pub time: DateTime<Utc>,
    pub host: String,
}

fn key(id: &PackId) -> String {
    format!("{DIR}{id}")
}

impl Repository {
    /// The packs marked for deletion, from the listing alone (no key needed). Names that are
    /// not pack ids are ignored.
    pub fn doomed_packs(&self) -> Result<HashSet<PackId>> {
        let listed = self
            .storage()
            .list(DIR)
            .map_err(|e| storage_error(&self.location(), e))?;
        Ok(listed
            .into_iter()
            .filter_map(|o| {
                let id = PackId::from_hash(parse_hex(o.key.strip_prefix(DIR)?)?);
                (key(&id) == o.key).then_some(id)
            })
            .collect())
    }

    /// A pack's mark; `None` when it has none (any more). A marker that does not parse is an
    /// error: its pack must then be treated as marked just now.
    pub fn doomed_mark(&self, id: &PackId) -> Result<Option<Mark>> {
        match self.storage().get(&key(id)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Integrity(format!("marker {} is unreadable ({e})", key(id)).into())
            }),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(storage_error(&self.location(), e)),
        }
    }

    /// Marks a pack; a pack already marked keeps its older mark.
    pub fn mark_doomed(&self, id: &PackId, mark: &Mark) -> Result<()> {
        let body = serde_json::to_vec(mark)
            .map_err(|e| Error::Internal(format!("cannot encode a marker: {e}").into()))?;
        match self.storage().put(&key(id), &body) {
            Ok(()) | Err(StorageError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(storage_error(&self.location(), e)),
        }
    }

    /// Removes a pack's mark: the pack is needed again, or gone.
    pub fn unmark_doomed(&self, id: &PackId) -> Result<(), StorageError> {
        self.storage().delete(&key(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryStorage, Storage};
    use std::sync::Arc;

    #[test]
    fn marks_are_listed_read_kept_and_removed() {
        let storage = Arc::new(MemoryStorage::new());
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        let repo = Repository::init(storage.clone(), vec![recipient]).expect("init");
        let (a, b) = (PackId([1; 32]), PackId([2; 32]));
        let first = Mark {
            time: "2026-01-01T00:00:00Z".parse().expect("time"),
            host: "h".into(),
        };
        repo.mark_doomed(&a, &first).expect("mark");
        let later = Mark {
            time: "2026-02-01T00:00:00Z".parse().expect("time"),
            ..first.clone()
        };
        repo.mark_doomed(&a, &later).expect("mark again");
        storage
            .put("doomed/not-a-pack", b"{}")
            .expect("foreign name");
        assert_eq!(repo.doomed_packs().expect("list"), HashSet::from([a]));
        assert_eq!(repo.doomed_mark(&a).expect("read"), Some(first));
        assert_eq!(repo.doomed_mark(&b).expect("read"), None);
        repo.unmark_doomed(&a).expect("unmark");
        assert!(repo.doomed_packs().expect("list").is_empty());
    }
}
