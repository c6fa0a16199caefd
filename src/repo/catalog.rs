//! The snapshots of a repository as a reader sees them: every manifest that opens, with who
//! vouches for it, and the ones that do not open. An unreadable object (foreign, damaged,
//! encrypted to another key) is reported, never a reason to refuse what is intact; `latest`
//! is the newest readable snapshot a trusted signer signed.

use super::ids::SnapshotId;
use super::keys::Keyring;
use super::manifest::{Authenticity, Manifest};
use super::signing::Signer;
use super::Repository;
use crate::error::{Error, Hint, Hinted, Result};
use std::collections::BTreeSet;

/// Which signers a reader trusts, and whether it takes snapshots none of them signed.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub signers: BTreeSet<Signer>,
    /// Accept snapshots that are unsigned, badly signed or signed by someone else.
    pub allow_unverified: bool,
}

/// What a reader makes of a snapshot's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by a trusted signer.
    Trusted(Signer),
    /// Validly signed, by a signer this reader was not told to trust.
    UntrustedSigner(Signer),
    /// No signature: written before signing existed, or by someone without a key.
    Unsigned,
    /// A signature that does not match: altered or forged.
    BadSignature(Signer),
}

impl Verdict {
    /// The word `snapshots` shows.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Trusted(_) => "signed",
            Verdict::UntrustedSigner(_) => "untrusted signer",
            Verdict::Unsigned => "unsigned",
            Verdict::BadSignature(_) => "bad signature",
        }
    }
}

impl Trust {
    pub fn judge(&self, auth: &Authenticity) -> Verdict {
        match auth {
            Authenticity::Signed(s) if self.signers.contains(s) => Verdict::Trusted(s.clone()),
            Authenticity::Signed(s) => Verdict::UntrustedSigner(s.clone()),
            Authenticity::Unsigned => Verdict::Unsigned,
            Authenticity::BadSignature(s) => Verdict::BadSignature(s.clone()),
        }
    }

    /// Whether a snapshot with this verdict may be restored. Unsigned snapshots pass while
    /// the reader trusts nobody and the repository holds no signed snapshot: a repository
    /// written before signing stays readable (and the warning says what that means).
    fn accepts(&self, v: &Verdict, legacy: bool) -> bool {
        self.allow_unverified
            || matches!(v, Verdict::Trusted(_))
            || (legacy && *v == Verdict::Unsigned)
    }
}

pub struct Entry {
    pub id: SnapshotId,
    pub manifest: Manifest,
    pub verdict: Verdict,
}

pub struct Catalog {
    /// Oldest first.
    pub entries: Vec<Entry>,
    /// Snapshots whose manifest does not open, with why.
    pub unreadable: Vec<(SnapshotId, Error)>,
}

/// A snapshot picked for reading, with what the choice had to work around.
pub struct Resolved {
    pub id: SnapshotId,
    pub manifest: Manifest,
    pub verdict: Verdict,
    pub warnings: Vec<String>,
}

impl Catalog {
    /// No snapshot is signed and the reader trusts nobody: a repository from before signing.
    fn legacy(&self, trust: &Trust) -> bool {
        trust.signers.is_empty() && self.entries.iter().all(|e| e.verdict == Verdict::Unsigned)
    }

    /// The snapshots `trust` accepts, oldest first.
    pub fn accepted<'a>(&'a self, trust: &'a Trust) -> impl Iterator<Item = &'a Entry> + 'a {
        let legacy = self.legacy(trust);
        self.entries
            .iter()
            .filter(move |e| trust.accepts(&e.verdict, legacy))
    }

    pub fn warnings(&self) -> Vec<String> {
        self.unreadable
            .iter()
            .map(|(id, why)| {
                format!(
                    "snapshot {id} cannot be read ({}); it was skipped",
                    why.message()
                )
            })
            .collect()
    }
}

impl Repository {
    /// Every snapshot's manifest (of one source, by name or path, when given), judged by
    /// `trust`. Fails only when not one manifest opens because the identity is wrong.
    pub fn catalog(&self, keys: &Keyring, source: Option<&str>, trust: &Trust) -> Result<Catalog> {
        let mut entries = Vec::new();
        let mut unreadable = Vec::new();
        let mut key_error = None;
        let mut key_errors = 0;
        for (id, _) in self.list::<SnapshotId>()? {
            match self.load_snapshot(keys, &id) {
                Ok((m, _)) if !m.is_of(source) => {}
                Ok((manifest, auth)) => entries.push(Entry {
                    id,
                    manifest,
                    verdict: trust.judge(&auth),
                }),
                Err(e) => {
                    if matches!(e, Error::Key(_)) {
                        key_errors += 1;
                        key_error.get_or_insert(e.clone());
                    }
                    unreadable.push((id, e));
                }
            }
        }
        if let Some(e) = key_error {
            if entries.is_empty() && key_errors == unreadable.len() {
                return Err(e);
            }
        }
        entries.sort_by(|a, b| a.manifest.time.cmp(&b.manifest.time).then(a.id.cmp(&b.id)));
        Ok(Catalog {
            entries,
            unreadable,
        })
    }

    /// Resolves `latest` or a unique id prefix, refusing a snapshot `trust` does not accept.
    pub fn resolve_snapshot(
        &self,
        keys: &Keyring,
        spec: &str,
        source: Option<&str>,
        trust: &Trust,
    ) -> Result<Resolved> {
        let (picked, legacy, mut warnings) = if spec == "latest" {
            let catalog = self.catalog(keys, source, trust)?;
            let legacy = catalog.legacy(trust);
            let newest = catalog
                .entries
                .iter()
                .rev()
                .find(|e| trust.accepts(&e.verdict, legacy));
            let Some(newest) = newest else {
                return Err(self.nothing_acceptable(&catalog, source));
            };
            let picked = Entry {
                id: newest.id,
                manifest: newest.manifest.clone(),
                verdict: newest.verdict.clone(),
            };
            (picked, legacy, catalog.warnings())
        } else {
            // A named snapshot needs only its own manifest; the others are read only when they
            // decide whether an unsigned one may pass (a repository from before signing).
            let id = self.id_by_prefix(spec)?;
            let (manifest, auth) = self.load_snapshot(keys, &id)?;
            if !manifest.is_of(source) {
                return Err(self.no_snapshot(spec));
            }
            let picked = Entry {
                id,
                manifest,
                verdict: trust.judge(&auth),
            };
            let (legacy, warnings) =
                if picked.verdict == Verdict::Unsigned && trust.signers.is_empty() {
                    let catalog = self.catalog(keys, source, trust)?;
                    (catalog.legacy(trust), catalog.warnings())
                } else {
                    (false, Vec::new())
                };
            (picked, legacy, warnings)
        };
        if !trust.accepts(&picked.verdict, legacy) {
            return Err(refusal(&picked.id, &picked.verdict));
        }
        match &picked.verdict {
            Verdict::Trusted(_) => {}
            Verdict::Unsigned if legacy => warnings.push(format!(
                "snapshot {} is unsigned, like every snapshot in {}: it was written before snapshots were signed, and anyone with write access to the repository could have made it",
                picked.id,
                self.location()
            )),
            v => warnings.push(format!(
                "snapshot {} is not authenticated ({}): restored on request",
                picked.id,
                v.label()
            )),
        }
        Ok(Resolved {
            id: picked.id,
            manifest: picked.manifest,
            verdict: picked.verdict,
            warnings,
        })
    }

    /// The one snapshot whose id starts with `spec`, from the listing alone.
    fn id_by_prefix(&self, spec: &str) -> Result<SnapshotId> {
        let spec_l = spec.to_ascii_lowercase();
        if spec_l.is_empty() || !spec_l.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Usage(
                format!("{spec:?} is not a snapshot id").hinted(Hint::SnapshotSpec),
            ));
        }
        let matches: Vec<SnapshotId> = self
            .list::<SnapshotId>()?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| id.to_string().starts_with(&spec_l))
            .collect();
        match matches[..] {
            [] => Err(self.no_snapshot(spec)),
            [id] => Ok(id),
            _ => Err(Error::Usage(
                format!(
                    "snapshot prefix {spec} matches {} snapshots; give more characters of the id",
                    matches.len()
                )
                .into(),
            )),
        }
    }

    fn no_snapshot(&self, spec: &str) -> Error {
        Error::Usage(
            format!("no snapshot {spec} in {}", self.location()).hinted(Hint::ListSnapshots),
        )
    }

    fn nothing_acceptable(&self, catalog: &Catalog, source: Option<&str>) -> Error {
        let of = source.map(|s| format!(" of {s}")).unwrap_or_default();
        let signers: BTreeSet<String> = catalog
            .entries
            .iter()
            .filter_map(|e| match &e.verdict {
                Verdict::UntrustedSigner(s) => Some(s.to_string()),
                _ => None,
            })
            .collect();
        if catalog.entries.is_empty() {
            let readable = if catalog.unreadable.is_empty() {
                ""
            } else {
                "readable "
            };
            return Error::Usage(
                format!("{} holds no {readable}snapshot{of}", self.location())
                    .hinted(Hint::BackUpFirst),
            );
        }
        if signers.is_empty() {
            return Error::Key(
                format!(
                    "no snapshot{of} in {} is signed by a trusted signer",
                    self.location()
                )
                .hinted(Hint::AllowUnverified),
            );
        }
        Error::Key(
            format!(
                "no snapshot{of} in {} is signed by a trusted signer; its snapshots are signed by {}",
                self.location(),
                signers.into_iter().collect::<Vec<_>>().join(", ")
            )
            .hinted(Hint::TrustSigner),
        )
    }
}

fn refusal(id: &SnapshotId, v: &Verdict) -> Error {
    let why = match v {
        Verdict::UntrustedSigner(s) => format!("it is signed by {s}, which is not trusted"),
        Verdict::Unsigned => "it is not signed, and the repository holds signed snapshots".into(),
        Verdict::BadSignature(_) => "its signature does not match: it was altered or forged".into(),
        Verdict::Trusted(_) => "it is trusted".into(),
    };
    let hint = match v {
        Verdict::UntrustedSigner(_) => Hint::TrustSigner,
        _ => Hint::AllowUnverified,
    };
    Error::Key(format!("snapshot {id} is not authenticated: {why}").hinted(hint))
}
