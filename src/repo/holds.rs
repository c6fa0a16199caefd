//! Legal holds: `holds/<id>` objects, each naming one snapshot that no retention rule may
//! forget, with who placed it, when and why. Encrypted like every object (the reason may be
//! confidential) and content-addressed; removing a hold deletes its objects.

use super::ids::{HoldId, SnapshotId};
use super::keys::Keyring;
use super::Repository;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub snapshot: SnapshotId,
    pub reason: String,
    /// RFC 3339 UTC.
    pub time: String,
    pub host: String,
}

/// The holds that open, and the objects under `holds/` that do not, with why.
pub type Holds = (Vec<(HoldId, Hold)>, Vec<(HoldId, Error)>);

impl Repository {
    /// Every readable hold, and each object under `holds/` that does not open, with why.
    pub fn holds(&self, keys: &Keyring) -> Result<Holds> {
        let (mut holds, mut unreadable) = (Vec::new(), Vec::new());
        for (id, _) in self.list::<HoldId>()? {
            let read = self
                .get_object(&id)
                .and_then(|sealed| self.unseal(keys, &id, &sealed))
                .and_then(|plain| {
                    serde_json::from_slice::<Hold>(&plain).map_err(|e| {
                        Error::Integrity(format!("hold {id} is unreadable ({e})").into())
                    })
                });
            match read {
                Ok(h) => holds.push((id, h)),
                Err(e) => unreadable.push((id, e)),
            }
        }
        Ok((holds, unreadable))
    }

    /// Stores a hold, sealed to the repository's recipients.
    pub fn put_hold(&self, hold: &Hold) -> Result<HoldId> {
        let plain = serde_json::to_vec(hold)
            .map_err(|e| Error::Internal(format!("cannot encode a hold: {e}").into()))?;
        let sealed = super::codec::Sealer::new(&self.config().recipients)?.seal(&plain, 3)?;
        self.put_object::<HoldId>(&sealed)
    }
}
