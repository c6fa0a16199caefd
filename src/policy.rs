//! Policies: one TOML file per protected system, naming its sources, targets and keys, so that
//! commands can say `--to offsite` instead of repeating URLs, endpoints and lock settings.
//! Every section of the format is parsed strictly (an unknown key is an error naming the file,
//! the line and the nearest valid key); schedules, retention and objectives are read and kept
//! for the scheduler but not acted on by one-off commands; `[notify]` is used by `notify`.

use crate::error::{Error, Hint, Hinted, Result};
use crate::typo::nearest;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod duration;
mod list;
mod sources;

pub use duration::parse_duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The sources as written: one database each, or a glob of many.
    #[serde(default, rename = "source")]
    sources_written: Vec<SourceEntry>,
    /// Every source, globs expanded (one per matching file, named after it).
    #[serde(skip)]
    pub source: Vec<SourcePolicy>,
    #[serde(default)]
    pub target: Vec<TargetPolicy>,
    pub encryption: Option<Encryption>,
    pub schedule: Option<Schedule>,
    pub retention: Option<Retention>,
    pub notify: Option<Notify>,
    /// `[objectives]`: how old the newest good snapshot may be, how long a restore may take.
    #[serde(default)]
    pub objectives: Objectives,
    /// The file this policy came from, for messages.
    #[serde(skip)]
    pub file: PathBuf,
}

/// One protected database.
#[derive(Debug, Clone)]
pub struct SourcePolicy {
    pub name: String,
    pub path: PathBuf,
    /// What an invoice is in this database: drives drill checks and period restore.
    pub business: Option<Business>,
    /// The targets this source goes to, by name; empty means every target of the policy.
    pub targets: Vec<String>,
}

/// A `[[source]]` as written: `name` and `path`, or a `glob` (`/srv/branches/*.sqlite`) whose
/// every matching file is a source named after the file (with `name_prefix` before it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceEntry {
    name: Option<String>,
    path: Option<PathBuf>,
    glob: Option<String>,
    name_prefix: Option<String>,
    business: Option<Business>,
    #[serde(default)]
    targets: Vec<String>,
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

/// Standard 5-field cron expressions, in local time or in `time_zone`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub incremental: Option<String>,
    pub full: Option<String>,
    pub drill: Option<String>,
    /// An IANA time zone name (`Europe/Berlin`) the expressions are read in, instead of the
    /// host's local time.
    pub time_zone: Option<String>,
    /// Take a backup in full once the incrementals since the last full stored changed pages
    /// worth this share of the database: a percent (`100`, `"50%"`) or `"off"`.
    pub full_after_changed: Option<toml::Value>,
    /// The daemon starts each due job after a random delay below this, so that many hosts
    /// on one schedule do not all start at once.
    #[serde(default, deserialize_with = "duration::jitter")]
    pub jitter: Option<Duration>,
}

impl Policy {
    /// The `--full-after-changed` limit of this policy's backups (`None`: off): its
    /// `[schedule] full_after_changed`, else the default.
    pub fn full_after_changed(&self) -> Option<u32> {
        match self.schedule.as_ref().map(Schedule::full_after_changed) {
            Some(Ok(limit)) => limit,
            _ => Some(crate::engine::backup::DEFAULT_FULL_AFTER_CHANGED),
        }
    }
}

impl Schedule {
    /// The `full_after_changed` limit (checked when the policy was loaded), the default when
    /// not set; `None` is `off`.
    pub fn full_after_changed(&self) -> std::result::Result<Option<u32>, String> {
        let Some(v) = &self.full_after_changed else {
            return Ok(Some(crate::engine::backup::DEFAULT_FULL_AFTER_CHANGED));
        };
        let text = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => "a table or list".into(),
        };
        crate::engine::backup::parse_full_after_changed(&text)
            .map_err(|e| format!("[schedule] full_after_changed: {e}"))
    }

    /// The zone the expressions are read in, or one sentence on why `time_zone` names none.
    pub fn zone(&self) -> std::result::Result<crate::scheduler::plan::Zone, String> {
        use crate::scheduler::plan::Zone;
        let Some(name) = &self.time_zone else {
            return Ok(Zone::Local);
        };
        name.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()).collect();
            let hint = match nearest(name, &names) {
                Some(n) => format!("did you mean {n:?}?"),
                None => "write an IANA name such as \"Europe/Berlin\" or \"Asia/Shanghai\"".into(),
            };
            format!("[schedule] time_zone = {name:?} is not a time zone; {hint}")
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub keep_last: Option<Keep>,
    pub keep_hourly: Option<Keep>,
    pub keep_daily: Option<Keep>,
    pub keep_weekly: Option<Keep>,
    pub keep_monthly: Option<Keep>,
    pub keep_yearly: Option<Keep>,
    /// Every snapshot younger than this, counted from the newest.
    #[serde(default, deserialize_with = "duration::keep_within")]
    pub keep_within: Option<Duration>,
    #[serde(default)]
    pub keep_tags: Vec<String>,
    /// The last snapshot of each closed month.
    pub keep_month_end: Option<Keep>,
    /// The last snapshot of each closed fiscal year.
    pub keep_year_end: Option<Keep>,
    /// `MM-DD`, default `01-01`.
    pub fiscal_year_start: Option<String>,
    /// Whether `ivault run` prunes each target after forgetting (default true).
    pub prune: Option<bool>,
    /// How long a pack stays marked before a prune deletes it (default 24h): longer than any
    /// backup into the policy's targets runs.
    #[serde(default, deserialize_with = "duration::prune_grace")]
    pub prune_grace: Option<Duration>,
}

/// A count of periods to keep, or `"all"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Keep {
    Count(u32),
    Word(String),
}

impl Retention {
    /// The rules, or the key whose value is wrong (if one is) and one sentence.
    pub fn rules(
        &self,
    ) -> std::result::Result<crate::retention::Rules, (Option<&'static str>, String)> {
        use crate::retention::Count;
        let count = |key: &'static str, k: &Option<Keep>| match k {
            None => Ok(None),
            Some(Keep::Count(n)) => Ok(Some(Count::Last(*n))),
            Some(Keep::Word(w)) if w == "all" => Ok(Some(Count::All)),
            Some(Keep::Word(w)) => Err((
                Some(key),
                format!("[retention] {key} = {w:?}: give a number or \"all\""),
            )),
        };
        let fiscal_year_start = match &self.fiscal_year_start {
            None => (1, 1),
            Some(s) => s
                .split_once('-')
                .and_then(|(m, d)| Some((m.parse().ok()?, d.parse().ok()?)))
                .filter(|(m, d)| chrono::NaiveDate::from_ymd_opt(2024, *m, *d).is_some())
                .ok_or_else(|| {
                    (Some("fiscal_year_start"), format!("[retention] fiscal_year_start = {s:?} is not a month and day; write it like \"04-01\""))
                })?,
        };
        let rules = crate::retention::Rules {
            last: count("keep_last", &self.keep_last)?,
            hourly: count("keep_hourly", &self.keep_hourly)?,
            daily: count("keep_daily", &self.keep_daily)?,
            weekly: count("keep_weekly", &self.keep_weekly)?,
            monthly: count("keep_monthly", &self.keep_monthly)?,
            yearly: count("keep_yearly", &self.keep_yearly)?,
            within: self.keep_within,
            tags: self.keep_tags.clone(),
            month_end: count("keep_month_end", &self.keep_month_end)?,
            year_end: count("keep_year_end", &self.keep_year_end)?,
            fiscal_year_start,
        };
        if !rules.keeps_something() {
            return Err((
                None,
                "[retention] keeps no snapshot at all; give at least one keep rule above 0".into(),
            ));
        }
        Ok(rules)
    }
}

/// Recovery objectives (`[objectives] rpo = "26h"`, `rto = "15m"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    /// Recovery point objective: the most data, as time, a failure may lose.
    #[serde(default, deserialize_with = "duration::rpo")]
    pub rpo: Option<Duration>,
    /// Recovery time objective: the longest a restore may take.
    #[serde(default, deserialize_with = "duration::rto")]
    pub rto: Option<Duration>,
}

/// Who hears of a failed backup or drill (see `notify`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// A command run with `/bin/sh -c`, the JSON summary on its stdin.
    pub on_failure: Option<NotifyCommand>,
    /// An `http://` or `https://` URL the JSON summary is POSTed to.
    pub webhook: Option<String>,
    /// How long each notifier may take (`notify::timeout` gives the default).
    #[serde(default, deserialize_with = "duration::notify_timeout")]
    pub timeout: Option<Duration>,
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
        policy.source = policy.expand_sources(text)?;
        policy.validate(text)?;
        policy.validate_lists(text)?;
        Ok(policy)
    }

    fn error(&self, what: String) -> Error {
        Error::Policy(format!("policy {}: {what}", self.file.display()).into())
    }

    /// The error for `key`'s value (in `section`), naming the line it is on when it can be found.
    fn error_at(&self, text: &str, section: &str, key: Option<&str>, what: String) -> Error {
        match key.and_then(|k| line_of(text, section, k)) {
            Some(line) => {
                Error::Policy(format!("policy {}, line {line}: {what}", self.file.display()).into())
            }
            None => self.error(what),
        }
    }

    fn validate(&self, text: &str) -> Result<()> {
        if let Some(r) = &self.retention {
            r.rules()
                .map_err(|(key, e)| self.error_at(text, "retention", key, e))?;
        }
        if let Some(s) = &self.schedule {
            for (key, expr) in [
                ("incremental", &s.incremental),
                ("full", &s.full),
                ("drill", &s.drill),
            ] {
                if let Some(e) = expr {
                    crate::scheduler::plan::parse_cron(e).map_err(|m| {
                        self.error_at(
                            text,
                            "schedule",
                            Some(key),
                            format!("[schedule] {key}: {m}"),
                        )
                    })?;
                }
            }
            s.zone()
                .map_err(|m| self.error_at(text, "schedule", Some("time_zone"), m))?;
            s.full_after_changed()
                .map_err(|m| self.error_at(text, "schedule", Some("full_after_changed"), m))?;
        }
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
        for (name, target) in self
            .source
            .iter()
            .flat_map(|s| s.targets.iter().map(move |t| (&s.name, t)))
        {
            if self.target.iter().all(|t| &t.name != target) {
                let names: Vec<&str> = self.target.iter().map(|t| t.name.as_str()).collect();
                let hint = match crate::typo::nearest(target, &names) {
                    Some(n) => format!("did you mean {n}?"),
                    None => format!("the targets are: {}", names.join(", ")),
                };
                let quoted = format!("\"{target}\"");
                let line = text
                    .lines()
                    .position(|l| l.trim_start().starts_with("targets") && l.contains(&quoted));
                let what = format!("source {name} names the target {target}, which this policy does not define; {hint}");
                return Err(match line {
                    Some(i) => Error::Policy(
                        format!("policy {}, line {}: {what}", self.file.display(), i + 1).into(),
                    ),
                    None => self.error(what),
                });
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
        if let Some(notify) = &self.notify {
            if notify
                .on_failure
                .as_ref()
                .is_some_and(|c| c.command.trim().is_empty())
            {
                return Err(self.error(
                    "[notify] on_failure has an empty command; give the command to run".into(),
                ));
            }
            // The URL itself is not repeated: webhook URLs often carry a token.
            if let Some(url) = &notify.webhook {
                let rest = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"));
                if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
                    return Err(self.error(
                        "[notify] webhook is not an http:// or https:// URL; write it like https://hooks.example.internal/ivault".into(),
                    ));
                }
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

    /// The names of the targets a source goes to: those it names, else every target.
    pub fn targets_of(&self, source: Option<&str>) -> Vec<String> {
        match source.and_then(|n| self.source(n)) {
            Some(s) if !s.targets.is_empty() => s.targets.clone(),
            _ => self.target.iter().map(|t| t.name.clone()).collect(),
        }
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

/// The line (1-based) of `key = …` inside the `[section]` table of a policy's text.
fn line_of(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or_default().trim();
        if l.starts_with('[') {
            inside = l.trim_matches(|c| c == '[' || c == ']').trim() == section;
        } else if inside
            && l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(i + 1);
        }
    }
    None
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
    if msg.ends_with(duration::DURATION_HINT) {
        return format!("{at}: {msg}");
    }
    format!("{at}: {}; fix the file", msg.replace('\n', " "))
}

#[cfg(test)]
mod tests;
