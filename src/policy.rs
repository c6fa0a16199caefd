//! Policies: one TOML file per protected system, naming its sources, targets and keys, so that
//! commands can say `--to offsite` instead of repeating URLs, endpoints and lock settings.
//! Every section of the format is parsed strictly (an unknown key is an error naming the file,
//! the line and the nearest valid key); schedules, retention and objectives are read and kept
//! for the scheduler but not acted on by one-off commands; `[notify]` is used by `notify`.

use crate::error::{Error, Hint, Hinted, Result};
use crate::typo::nearest;
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    pub keep_last: Option<Keep>,
    pub keep_hourly: Option<Keep>,
    pub keep_daily: Option<Keep>,
    pub keep_weekly: Option<Keep>,
    pub keep_monthly: Option<Keep>,
    pub keep_yearly: Option<Keep>,
    /// Every snapshot younger than this, counted from the newest.
    #[serde(default, deserialize_with = "keep_within")]
    pub keep_within: Option<Duration>,
    #[serde(default)]
    pub keep_tags: Vec<String>,
    /// The last snapshot of each closed month.
    pub keep_month_end: Option<Keep>,
    /// The last snapshot of each closed fiscal year.
    pub keep_year_end: Option<Keep>,
    /// `MM-DD`, default `01-01`.
    pub fiscal_year_start: Option<String>,
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
    #[serde(default, deserialize_with = "rpo")]
    pub rpo: Option<Duration>,
    /// Recovery time objective: the longest a restore may take.
    #[serde(default, deserialize_with = "rto")]
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
    #[serde(default, deserialize_with = "notify_timeout")]
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
        Ok(policy)
    }

    fn error(&self, what: String) -> Error {
        Error::Policy(format!("policy {}: {what}", self.file.display()).into())
    }

    /// Every source, with each glob replaced by the files it matches (found with walkdir,
    /// sorted, each named after its file stem). A glob that matches nothing is an error.
    fn expand_sources(&self, text: &str) -> Result<Vec<SourcePolicy>> {
        let mut out = Vec::new();
        for (i, e) in self.sources_written.iter().enumerate() {
            let at = |what: String| self.error_at(text, "source", Some("glob"), what);
            match (&e.name, &e.path, &e.glob) {
                (Some(name), Some(path), None) => out.push(SourcePolicy {
                    name: name.clone(),
                    path: path.clone(),
                    business: e.business.clone(),
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

/// How a duration is written in a policy: whole numbers with a unit `s`, `m`, `h` or `d`, larger
/// units first, each at most once: `90s`, `15m`, `26h`, `2d`, `1h30m`. (Hand-written rather than
/// humantime, which also takes `15min`, `2 days`, months, years and zero.)
const DURATION_HINT: &str = "write it like 90s, 15m, 26h or 2d";

/// A policy duration (see [`DURATION_HINT`]); `None` for anything else. Zero parses as zero.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total: u64 = 0;
    let mut previous_unit = u64::MAX;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        let unit = match rest.as_bytes().get(digits)? {
            b's' => 1,
            b'm' => 60,
            b'h' => 60 * 60,
            b'd' => 24 * 60 * 60,
            _ => return None,
        };
        if unit >= previous_unit {
            return None;
        }
        previous_unit = unit;
        total = total.checked_add(number.checked_mul(unit)?)?;
        // The digits and the unit are ASCII, so this is a character boundary.
        rest = &rest[digits + 1..];
    }
    Some(Duration::from_secs(total))
}

/// Deserializes the duration at `key`; errors are whole sentences ending in [`DURATION_HINT`],
/// which [`describe`] prefixes with the file and the line.
fn duration<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
) -> Result<Option<Duration>, D::Error> {
    struct Visitor(&'static str);
    impl Visitor {
        fn not_a_duration<E: serde::de::Error>(&self, shown: impl std::fmt::Display) -> E {
            E::custom(format!(
                "{} = {shown} is not a duration; {DURATION_HINT}",
                self.0
            ))
        }
    }
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a duration such as \"15m\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
            match parse_duration(v) {
                Some(d) if d.is_zero() => Err(E::custom(format!(
                    "{} = {v:?} is zero; give a longer duration, {DURATION_HINT}",
                    self.0
                ))),
                Some(d) => Ok(d),
                None => Err(self.not_a_duration(format_args!("{v:?}"))),
            }
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
            Err(self.not_a_duration(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
            Err(self.not_a_duration(v))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Duration, E> {
            Err(self.not_a_duration(v))
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Duration, E> {
            Err(self.not_a_duration(v))
        }
    }
    d.deserialize_any(Visitor(key)).map(Some)
}

fn rpo<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d, "rpo")
}

fn rto<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d, "rto")
}

fn keep_within<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d, "keep_within")
}

fn notify_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d, "timeout")
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
    if msg.ends_with(DURATION_HINT) {
        return format!("{at}: {msg}");
    }
    format!("{at}: {}; fix the file", msg.replace('\n', " "))
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

[objectives]
rpo = "26h"
rto = "15m"

[notify]
on_failure = { command = "/usr/local/bin/page-oncall" }
webhook = "https://hooks.example.internal/ivault"
timeout = "10s"
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
        assert_eq!(
            p.objectives,
            Objectives {
                rpo: Some(Duration::from_secs(26 * 3600)),
                rto: Some(Duration::from_secs(15 * 60)),
            }
        );
        let notify = p.notify.as_ref().unwrap();
        assert_eq!(notify.timeout, Some(Duration::from_secs(10)));
        assert_eq!(
            notify.on_failure.as_ref().unwrap().command,
            "/usr/local/bin/page-oncall"
        );
    }

    #[test]
    fn objectives_are_optional() {
        let p = parse("[objectives]\nrto = \"1h30m\"\n").unwrap();
        assert_eq!(p.objectives.rpo, None);
        assert_eq!(p.objectives.rto, Some(Duration::from_secs(5400)));
        assert_eq!(parse("").unwrap().objectives, Objectives::default());
    }

    #[test]
    fn durations_take_whole_numbers_with_units() {
        let secs = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Some(90));
        assert_eq!(secs("15m"), Some(900));
        assert_eq!(secs("26h"), Some(93_600));
        assert_eq!(secs("2d"), Some(172_800));
        assert_eq!(secs("1h30m"), Some(5400));
        assert_eq!(secs("1d2h3m4s"), Some(93_784));
        assert_eq!(secs("0s"), Some(0));
        for bad in [
            "",
            "15",
            "15x",
            "-5m",
            "1.5h",
            "m",
            "15 m",
            " 15m",
            "15M",
            "30m1h",
            "1h1h",
            "99999999999999999999s",
            "18446744073709551615d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bad_durations_name_the_file_the_line_and_the_key() {
        let cases = [
            (
                "rto = \"15x\"",
                "rto = \"15x\" is not a duration; write it like 90s, 15m, 26h or 2d",
            ),
            (
                "rto = \"0m\"",
                "rto = \"0m\" is zero; give a longer duration, write it like 90s, 15m, 26h or 2d",
            ),
            (
                "rpo = \"-26h\"",
                "rpo = \"-26h\" is not a duration; write it like 90s, 15m, 26h or 2d",
            ),
            (
                "rpo = 26",
                "rpo = 26 is not a duration; write it like 90s, 15m, 26h or 2d",
            ),
            (
                "rpo = \"soon\"",
                "rpo = \"soon\" is not a duration; write it like 90s, 15m, 26h or 2d",
            ),
        ];
        for (line, message) in cases {
            let text = SKETCH
                .replace("rto = \"15m\"", line)
                .replace("rpo = \"26h\"\n", "");
            let n = text.lines().position(|l| l == line).unwrap() + 1;
            let e = parse(&text).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::POLICY);
            assert_eq!(e.to_string(), format!("policy p.toml, line {n}: {message}"));
        }
        let text = SKETCH.replace("timeout = \"10s\"", "timeout = \"10\"");
        let n = text.lines().position(|l| l == "timeout = \"10\"").unwrap() + 1;
        assert_eq!(
            parse(&text).unwrap_err().to_string(),
            format!(
                "policy p.toml, line {n}: timeout = \"10\" is not a duration; write it like 90s, 15m, 26h or 2d"
            )
        );
    }

    #[test]
    fn unknown_objective_keys_suggest_the_nearest() {
        let e = parse("[objectives]\nrpo = \"1h\"\nrtp = \"15m\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "policy p.toml, line 3: unknown key rtp; did you mean rto?"
        );
        let e = parse("[notify]\ntimout = \"5s\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "policy p.toml, line 2: unknown key timout; did you mean timeout?"
        );
    }

    #[test]
    fn notifiers_are_checked() {
        let e = parse("[notify]\nwebhook = \"hooks.example/x?token=s3cret\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "policy p.toml: [notify] webhook is not an http:// or https:// URL; write it like https://hooks.example.internal/ivault"
        );
        let e = parse("[notify]\non_failure = { command = \" \" }\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "policy p.toml: [notify] on_failure has an empty command; give the command to run"
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

    #[test]
    fn retention_becomes_rules_and_refuses_what_keeps_nothing() {
        use crate::retention::Count;
        let p = parse(
            "[retention]\nkeep_daily = 14\nkeep_month_end = \"all\"\nkeep_year_end = 7\nkeep_within = \"2d\"\nfiscal_year_start = \"04-01\"\nkeep_tags = [\"audit\"]\n",
        )
        .unwrap();
        let rules = p.retention.as_ref().unwrap().rules().unwrap();
        assert_eq!(rules.daily, Some(Count::Last(14)));
        assert_eq!(rules.month_end, Some(Count::All));
        assert_eq!(rules.year_end, Some(Count::Last(7)));
        assert_eq!(rules.within, Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(rules.fiscal_year_start, (4, 1));
        assert_eq!(rules.tags, ["audit"]);
        let e = parse("[retention]\nkeep_last = 0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "policy p.toml: [retention] keeps no snapshot at all; give at least one keep rule above 0"
        );
        let e = parse("[retention]\nkeep_month_end = \"every\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "policy p.toml, line 2: [retention] keep_month_end = \"every\": give a number or \"all\""
        );
        let e = parse("[retention]\nkeep_last = 3\nfiscal_year_start = \"13-01\"\n").unwrap_err();
        assert!(e.to_string().contains("is not a month and day"), "{e}");
    }

    #[test]
    fn a_bad_cron_expression_names_the_schedule() {
        let e = parse("[schedule]\nfull = \"30 1 * * Sun *\"\n").unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::POLICY);
        assert!(
            e.to_string().starts_with("policy p.toml, line 2: [schedule] full: \"30 1 * * Sun *\" is not a 5-field cron expression"),
            "{e}"
        );
    }
}
