//! Object names. Every object but `config` is named by the SHA-256 of its stored bytes, under
//! a directory that says what kind of object it is; each kind has its own id type, so a pack
//! id cannot be passed where a snapshot id is meant.

use crate::hash::{parse_hex, Hash};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The kinds of content-addressed objects, and where each lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `data/<first two hex digits>/<id>`: packs of blobs.
    Pack,
    /// `index/<id>`: which blobs each pack holds.
    Index,
    /// `snapshots/<id>`: manifests.
    Snapshot,
    /// `holds/<id>`: legal holds, each keeping one snapshot from being forgotten.
    Hold,
}

impl ObjectKind {
    /// The top-level directory of this kind.
    pub fn dir(self) -> &'static str {
        match self {
            ObjectKind::Pack => "data",
            ObjectKind::Index => "index",
            ObjectKind::Snapshot => "snapshots",
            ObjectKind::Hold => "holds",
        }
    }

    /// The object key of `id`.
    pub fn key(self, id: &Hash) -> String {
        let hex = hex::encode(id);
        match self {
            ObjectKind::Pack => format!("data/{}/{hex}", &hex[..2]),
            _ => format!("{}/{hex}", self.dir()),
        }
    }
}

/// An id of one kind of object.
pub trait ObjectId: Copy + Eq + std::hash::Hash + fmt::Display {
    const KIND: ObjectKind;
    fn from_hash(h: Hash) -> Self;
    fn digest(&self) -> &Hash;

    fn key(&self) -> String {
        Self::KIND.key(self.digest())
    }
}

macro_rules! object_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Hash);

        impl ObjectId for $name {
            const KIND: ObjectKind = $kind;
            fn from_hash(h: Hash) -> Self {
                $name(h)
            }
            fn digest(&self) -> &Hash {
                &self.0
            }
        }

        impl $name {
            /// Parses 64 hex digits.
            pub fn parse(s: &str) -> Option<Self> {
                parse_hex(s).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| serde::de::Error::custom("not a 64-digit hex id"))
            }
        }
    };
}

object_id!(
    /// A pack: the SHA-256 of its encrypted bytes.
    PackId,
    ObjectKind::Pack
);
object_id!(
    /// An index: the SHA-256 of its encrypted bytes.
    IndexId,
    ObjectKind::Index
);
object_id!(
    /// A snapshot: the SHA-256 of its encrypted manifest.
    SnapshotId,
    ObjectKind::Snapshot
);
object_id!(
    /// A legal hold: the SHA-256 of its encrypted record.
    HoldId,
    ObjectKind::Hold
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let h = [0xab; 32];
        let hex = hex::encode(h);
        assert_eq!(PackId(h).key(), format!("data/ab/{hex}"));
        assert_eq!(IndexId(h).key(), format!("index/{hex}"));
        assert_eq!(SnapshotId(h).key(), format!("snapshots/{hex}"));
        assert_eq!(HoldId(h).key(), format!("holds/{hex}"));
        assert_eq!(SnapshotId::parse(&hex), Some(SnapshotId(h)));
        assert_eq!(SnapshotId::parse("abc"), None);
        let json = serde_json::to_string(&SnapshotId(h)).unwrap();
        assert_eq!(json, format!("\"{hex}\""));
    }
}
