//! Policies: one TOML file per protected system, naming its sources, targets and keys, so that
//! commands can say `--to offsite` instead of repeating URLs, endpoints and lock settings.
//! Every section of the format is parsed strictly (an unknown key is an error naming the file,
//! the line and the nearest valid key); schedules, retention and notifications are read and
//! kept for the scheduler but not acted on by one-off commands.

use crate::error::{Error, Hint, Hinted, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub source: Vec<SourcePolicy>,
    #[serde(default)]
    pub target: Vec<TargetPolicy>,
    pub encryption: Option<Encryption>,
    pub schedule: Option<Schedule>,
    pub retention: Option<Retention>,
    pub notify: Option<Notify>,
    /// The file this policy came from, for messages.
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcePolicy {
    pub name: String,
    pub path: PathBuf,
    /// What an invoice is in this database: drives drill checks and period restore.
    pub business: Option<Business>,
}

/// What an invoice is in a source database (`[source.business]`).
pub use crate::facts::{ChildTable, Description as Business};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetPolicy {
    pub name: String,
    /// A local directory or `s3://bucket/prefix`.
    pub url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub object_lock_days: Option<u32>,
    /// `governance` (default) or `compliance`.
    pub object_lock_mode: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    #[serde(default)]
    pub recipients: Vec<String>,
    pub identity_file: Option<PathBuf>,
    /// The key backup hosts sign snapshots with (default: one in the state directory).
    pub signing_key: Option<PathBuf>,
    /// Signers (`ivsig1…`) whose snapshots restores and drills trust.
    #[serde(default)]
    pub signers: Vec<String>,
}

/// Standard 5-field cron expressions, local time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub incremental: Option<String>,
    pub full: Option<String>,
    pub drill: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub on_failure: Option<NotifyCommand>,
    pub webhook: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyCommand {
    pub command: String,
}

impl Policy {
    pub fn load(file: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "it does not exist".to_string(),
                kind => kind.to_string(),
            };
            Error::Policy(
                format!("cannot read policy {}: {why}", file.display()).hinted(Hint::PolicyPath),
            )
        })?;
        Policy::parse(&text, file)
    }

    /// Parses policy text; `file` names it in messages.
    pub fn parse(text: &str, file: &Path) -> Result<Policy> {
        let mut policy: Policy =
            toml::from_str(text).map_err(|e| Error::Policy(describe(&e, text, file).into()))?;
        policy.file = file.to_path_buf();
        policy.validate()?;
        Ok(policy)
    }

    fn error(&self, what: String) -> Error {
        Error::Policy(format!("policy {}: {what}", self.file.display()).into())
    }

    fn validate(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for name in self
            .source
            .iter()
            .map(|s| &s.name)
            .chain(self.target.iter().map(|t| &t.name))
        {
            if name.is_empty() || name.contains('/') || name.contains("://") {
                return Err(self.error(format!(
                    "{name:?} is not a usable name; give sources and targets short names without '/'"
                )));
            }
            if !seen.insert(name) {
                return Err(self.error(format!(
                    "the name {name} is used twice; give every source and target its own name"
                )));
            }
        }
        for t in &self.target {
            if t.url.is_empty() {
                return Err(self.error(format!(
                    "target {} has an empty url; give a directory or s3://bucket/prefix",
                    t.name
                )));
            }
            if let Some(mode) = &t.object_lock_mode {
                if !["governance", "compliance"].contains(&mode.to_ascii_lowercase().as_str()) {
                    return Err(self.error(format!(
                        "target {}: object_lock_mode {mode}: use governance or compliance",
                        t.name
                    )));
                }
            }
            if t.object_lock_days.is_some() && !t.url.starts_with("s3://") {
                return Err(self.error(format!(
                    "target {} sets object_lock_days, which applies only to s3:// targets",
                    t.name
                )));
            }
        }
        Ok(())
    }

    pub fn target(&self, name: &str) -> Option<&TargetPolicy> {
        self.target.iter().find(|t| t.name == name)
    }

    pub fn source(&self, name: &str) -> Option<&SourcePolicy> {
        self.source.iter().find(|s| s.name == name)
    }

    /// The error for a target or source name the policy does not define.
    pub fn unknown(&self, kind: &str, name: &str) -> Error {
        let names: Vec<&str> = if kind == "target" {
            self.target.iter().map(|t| t.name.as_str()).collect()
        } else {
            self.source.iter().map(|s| s.name.as_str()).collect()
        };
        let hint = match nearest(name, &names) {
            Some(n) => format!("did you mean {n}?"),
            None if names.is_empty() => format!("it defines no {kind}s"),
            None => format!("its {kind}s are {}", names.join(", ")),
        };
        self.error(format!(
            "no {kind} named {name} ({hint}); a local directory needs a '/' in its path, such as ./{name}"
        ))
    }
}

/// A bare word (no `/`, no scheme) that is not an existing path: meant as a name.
pub(crate) fn looks_like_a_name(s: &str) -> bool {
    !s.contains('/') && !s.contains("://") && !Path::new(s).exists()
}

/// What a backup's source argument names: a policy source (its path and name), or a file.
pub fn resolve_source(policy: Option<&Policy>, source: &Path) -> Result<(PathBuf, Option<String>)> {
    let text = source.to_string_lossy();
    match policy {
        Some(p) => match p.source(&text) {
            Some(s) => Ok((s.path.clone(), Some(s.name.clone()))),
            None if looks_like_a_name(&text) => Err(p.unknown("source", &text)),
            None => Ok((source.to_path_buf(), None)),
        },
        None => Ok((source.to_path_buf(), None)),
    }
}

/// One sentence for a TOML or schema error: the file, the line, and for an unknown key the
/// nearest valid one.
fn describe(e: &toml::de::Error, text: &str, file: &Path) -> String {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let at = match line {
        Some(l) => format!("policy {}, line {l}", file.display()),
        None => format!("policy {}", file.display()),
    };
    let msg = e.message().trim();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or_default();
        let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        return match nearest(key, &expected) {
            Some(n) => format!("{at}: unknown key {key}; did you mean {n}?"),
            None => format!(
                "{at}: unknown key {key}; valid keys here are {}",
                expected.join(", ")
            ),
        };
    }
    format!("{at}: {}; fix the file", msg.replace('\n', " "))
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min()
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKETCH: &str = r#"
[[source]]
name = "invoices-beijing"
path = "/srv/invoices/beijing.sqlite"
[source.business]
invoice_table = "invoices"
date_column = "issue_date"
amount_column = "total_cents"
key_columns = ["invoice_code", "invoice_no"]
children = [{ table = "invoice_items", fk = "invoice_id" }, { table = "tax_uploads", fk = "invoice_id" }]

[[target]]
name = "local"
url = "/var/backups/ivault"
[[target]]
name = "offsite"
url = "s3://finance-backups/ivault"
endpoint = "https://s3.example.internal"
object_lock_days = 30

[encryption]
recipients = ["age1..."]
identity_file = "/etc/ivault/restore.key"

[schedule]
incremental = "0 * * * *"
full = "30 1 * * Sun"
drill = "0 3 * * *"

[retention]
keep_last = 24
keep_daily = 14
keep_weekly = 8
keep_monthly = 24
keep_yearly = 10

[notify]
on_failure = { command = "/usr/local/bin/page-oncall" }
webhook = "https://hooks.example.internal/ivault"
"#;

    fn parse(text: &str) -> Result<Policy> {
        Policy::parse(text, Path::new("p.toml"))
    }

    #[test]
    fn the_documented_sketch_parses() {
        let p = parse(SKETCH).unwrap();
        let offsite = p.target("offsite").unwrap();
        assert_eq!(
            offsite.endpoint.as_deref(),
            Some("https://s3.example.internal")
        );
        assert_eq!(offsite.object_lock_days, Some(30));
        assert_eq!(
            p.source("invoices-beijing")
                .unwrap()
                .business
                .as_ref()
                .unwrap()
                .children
                .len(),
            2
        );
    }

    #[test]
    fn an_unknown_key_names_the_line_and_the_nearest_key() {
        let text = SKETCH.replace("keep_daily = 14", "keep_dialy = 14");
        let line = text
            .lines()
            .position(|l| l.starts_with("keep_dialy"))
            .unwrap()
            + 1;
        let e = parse(&text).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::POLICY);
        assert_eq!(
            e.to_string(),
            format!("policy p.toml, line {line}: unknown key keep_dialy; did you mean keep_daily?")
        );
    }

    #[test]
    fn bad_values_and_names_are_refused() {
        let e = parse(
            "[[target]]\nname = \"a\"\nurl = \"/x\"\n[[target]]\nname = \"a\"\nurl = \"/y\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("used twice"), "{e}");
        let e =
            parse("[[target]]\nname = \"a\"\nurl = \"/x\"\nobject_lock_days = 3\n").unwrap_err();
        assert!(e.to_string().contains("only to s3://"), "{e}");
        let e =
            parse("[[target]]\nname = \"a\"\nurl = \"s3://b/x\"\nobject_lock_mode = \"strict\"\n")
                .unwrap_err();
        assert!(e.to_string().contains("governance or compliance"), "{e}");
        let e = parse("[retention]\nkeep_last = \"many\"\n").unwrap_err();
        assert!(e.to_string().starts_with("policy p.toml, line 2:"), "{e}");
    }

    #[test]
    fn unknown_names_suggest_the_nearest() {
        let p = parse(SKETCH).unwrap();
        assert!(p
            .unknown("target", "ofsite")
            .to_string()
            .contains("did you mean offsite?"));
        assert!(p
            .unknown("target", "tape")
            .to_string()
            .contains("its targets are local, offsite"));
    }
}
