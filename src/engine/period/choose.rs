//! Which snapshot a period restore compares with: `latest` (passing over the undo points of
//! earlier repairs), an id, or `auto`, the newest of
//! the snapshots whose invoice count and total for the period are the highest (from the
//! business facts a backup recorded, when the period is whole months and the description is
//! the same; otherwise measured on the snapshot read in place).

use super::dates::Period;
use super::diff::Figures;
use crate::error::Result;
use crate::facts::{Amount, Description};
use crate::repo::catalog::Trust;
use crate::repo::ids::SnapshotId;
use crate::repo::keys::Keyring;
use crate::repo::manifest::Manifest;
use crate::repo::Repository;

/// The tag of the backup `--apply` takes before it writes.
pub(super) const UNDO_TAG: &str = "before-restore-period";

pub(super) struct Chosen {
    pub id: SnapshotId,
    pub manifest: Manifest,
    /// Why this snapshot, in words.
    pub why: String,
    pub warnings: Vec<String>,
}

/// What the snapshot is chosen for.
pub(super) struct Wanted<'a> {
    /// `latest`, `auto`, an id or prefix.
    pub spec: &'a str,
    /// The source whose snapshots count (name or path).
    pub filter: &'a str,
    /// The description the period is measured with (`None`: each snapshot's own).
    pub description: Option<&'a Description>,
    pub period: &'a Period,
}

/// Picks the snapshot `w.spec` names. `measure` counts a snapshot's period when its manifest
/// cannot tell.
pub(super) fn choose(
    repo: &Repository,
    keys: &Keyring,
    trust: &Trust,
    w: &Wanted,
    measure: &mut dyn FnMut(&SnapshotId, &Manifest) -> Result<Figures>,
) -> Result<Chosen> {
    let Wanted {
        spec,
        filter,
        description,
        period,
    } = *w;
    if spec == "latest" {
        // The undo point a repair takes lacks the period it repaired: `latest` passes over it.
        let catalog = repo.catalog(keys, Some(filter), trust)?;
        let newest = catalog
            .accepted(trust)
            .filter(|e| !e.manifest.tags.iter().any(|t| t == UNDO_TAG))
            .last();
        if let Some(e) = newest {
            return Ok(Chosen {
                id: e.id,
                manifest: e.manifest.clone(),
                why: format!(
                    "the newest snapshot of {filter} (not counting undo points of repairs)"
                ),
                warnings: catalog.warnings(),
            });
        }
    }
    if spec != "auto" {
        // A named snapshot is looked up among all sources, so that one of another source is
        // refused by name rather than not found.
        let source = (spec == "latest").then_some(filter);
        let r = repo.resolve_snapshot(keys, spec, source, trust)?;
        let why = if spec == "latest" {
            format!("the newest snapshot of {filter}")
        } else {
            "the snapshot given".to_string()
        };
        return Ok(Chosen {
            id: r.id,
            manifest: r.manifest,
            why,
            warnings: r.warnings,
        });
    }
    let catalog = repo.catalog(keys, Some(filter), trust)?;
    let accepted: Vec<_> = catalog.accepted(trust).collect();
    if accepted.is_empty() {
        // Says why none is acceptable.
        repo.resolve_snapshot(keys, "latest", Some(filter), trust)?;
    }
    let months = period.whole_months();
    let mut best: Option<(Figures, usize)> = None;
    let mut seen = Vec::new();
    for (k, e) in accepted.iter().enumerate() {
        let recorded = match (&months, &e.manifest.business) {
            (Some(months), Some(b)) if description.is_none_or(|d| *d == b.description) => {
                Some(recorded_figures(b, months))
            }
            _ => None,
        };
        let f = match recorded {
            Some(f) => f,
            None => measure(&e.id, &e.manifest)?,
        };
        // Oldest first: a later snapshot with the same figures takes the place.
        if best.is_none_or(|(b, _)| rank(&f) >= rank(&b)) {
            best = Some((f, k));
        }
        seen.push(f);
    }
    let Some((f, k)) = best else {
        // Unreachable: `accepted` is not empty here.
        return Err(crate::error::Error::Internal(
            "no snapshot to choose from".into(),
        ));
    };
    let e = accepted[k];
    let newer = accepted.len() - 1 - k;
    let mut why = format!(
        "holds {} invoices totalling {} from {} to {}, the most of {} of {filter}",
        f.invoices,
        f.total,
        period.from_text(),
        period.to_text(),
        match accepted.len() {
            1 => "its 1 snapshot".to_string(),
            n => format!("the {n} snapshots"),
        }
    );
    if newer > 0 {
        let last = seen.last().copied().unwrap_or(f);
        why.push_str(&format!(
            "; the {newer} newer hold fewer (the newest {} invoices totalling {})",
            last.invoices, last.total
        ));
    } else {
        why.push_str("; it is the newest");
    }
    Ok(Chosen {
        id: e.id,
        manifest: e.manifest.clone(),
        why,
        warnings: catalog.warnings(),
    })
}

fn rank(f: &Figures) -> (u64, f64) {
    (f.invoices, f.total.as_f64())
}

/// The period's figures from the months a backup recorded.
fn recorded_figures(b: &crate::facts::BusinessFacts, months: &[String]) -> Figures {
    let mut f = Figures {
        invoices: 0,
        total: Amount::Integer(0),
    };
    for m in b.months.iter().filter(|m| months.contains(&m.month)) {
        f.invoices += m.invoices;
        f.total = match (f.total, m.total) {
            (Amount::Integer(a), Amount::Integer(b)) => match a.checked_add(b) {
                Some(s) => Amount::Integer(s),
                None => Amount::Real(a as f64 + b as f64),
            },
            (a, b) => Amount::Real(a.as_f64() + b.as_f64()),
        };
    }
    f
}
