//! Sources as written (`name` and `path`, or a `glob`) turned into the sources a policy
//! protects.

use super::{Policy, SourcePolicy};
use crate::error::Result;
use std::path::PathBuf;

impl Policy {
    /// Every source, with each glob replaced by the files it matches (found with walkdir,
    /// sorted, each named after its file stem). A glob that matches nothing is an error.
    pub(super) fn expand_sources(&self, text: &str) -> Result<Vec<SourcePolicy>> {
        let mut out = Vec::new();
        for (i, e) in self.sources_written.iter().enumerate() {
            let at = |what: String| self.error_at(text, "source", Some("glob"), what);
            match (&e.name, &e.path, &e.glob) {
                (Some(name), Some(path), None) => out.push(SourcePolicy {
                    name: name.clone(),
                    path: path.clone(),
                    business: e.business.clone(),
                    targets: e.targets.clone(),
                }),
                (None, None, Some(glob)) => {
                    let files = glob_files(glob).map_err(at)?;
                    if files.is_empty() {
                        return Err(at(format!(
                            "source glob {glob:?} matches no file; check the pattern and the directory"
                        )));
                    }
                    for path in files {
                        let stem = path
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        out.push(SourcePolicy {
                            name: format!("{}{stem}", e.name_prefix.as_deref().unwrap_or("")),
                            path,
                            business: e.business.clone(),
                            targets: e.targets.clone(),
                        });
                    }
                }
                _ => {
                    return Err(self.error(format!(
                    "source #{} needs either name and path, or glob (with an optional name_prefix)",
                    i + 1
                )))
                }
            }
        }
        Ok(out)
    }
}

/// The files a glob matches: walks the directory before its first wildcard and keeps the
/// regular files whose path matches, sorted.
fn glob_files(pattern: &str) -> std::result::Result<Vec<PathBuf>, String> {
    let compiled = glob::Pattern::new(pattern)
        .map_err(|e| format!("source glob {pattern:?} is not a pattern ({e})"))?;
    let wild = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    let base = match pattern[..wild].rfind('/') {
        Some(0) => "/",
        Some(i) => &pattern[..i],
        None => ".",
    };
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::new()
    };
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(base)
        .follow_links(true)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| compiled.matches_path_with(p, options))
        .collect();
    files.sort();
    Ok(files)
}
