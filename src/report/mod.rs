//! Drill reports: the data ([`model`]) and its renderings for people and machines.
//!
//! [`render`] is the one entry point; each format lives in its own module and shares the
//! labels ([`labels`]), the number and duration wording ([`units`]) and what counts as a
//! difference ([`view`]).

mod chart;
mod html;
mod json;
pub mod labels;
mod markdown;
pub mod model;
pub mod reconcile;
pub mod units;
mod view;

use std::fmt;
use std::str::FromStr;

pub use labels::Lang;
use model::DrillReport;

/// How a report is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
    Html,
}

impl FromStr for Format {
    type Err = ParseError;

    /// `md` (or `markdown`), `json`, `html`.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            _ => Err(ParseError {
                what: "report format",
                value: s.to_string(),
                expected: "md, json or html",
            }),
        }
    }
}

/// A format or language name that is not one of those known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?}: expected {}",
            self.what, self.value, self.expected
        )
    }
}

impl std::error::Error for ParseError {}

/// Renders one report, or several (e.g. the last five drills) newest first. JSON gives the
/// report object for one and an array for several; Markdown and HTML show each in turn.
/// Labels follow `lang`; data (ids, names, numbers, the English `detail` sentences) do not.
pub fn render(reports: &[DrillReport], format: Format, lang: Lang) -> String {
    let ordered = newest_first(reports);
    match format {
        Format::Markdown => markdown::render(&ordered, lang),
        Format::Json => json::render(&ordered),
        Format::Html => html::render(&ordered, lang),
    }
}

/// RFC 3339 UTC times sort as strings; the drill id breaks ties (ids grow with time).
fn newest_first(reports: &[DrillReport]) -> Vec<&DrillReport> {
    let mut ordered: Vec<&DrillReport> = reports.iter().collect();
    ordered.sort_by(|a, b| b.started.cmp(&a.started).then(b.id.cmp(&a.id)));
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_languages_parse() {
        assert_eq!("md".parse::<Format>(), Ok(Format::Markdown));
        assert_eq!("JSON".parse::<Format>(), Ok(Format::Json));
        assert_eq!("html".parse::<Format>(), Ok(Format::Html));
        let err = "pdf".parse::<Format>().unwrap_err().to_string();
        assert!(
            err.contains("\"pdf\"") && err.contains("md, json or html"),
            "{err}"
        );
        assert_eq!("en".parse::<Lang>(), Ok(Lang::En));
        assert_eq!("zh-CN".parse::<Lang>(), Ok(Lang::ZhCn));
        assert_eq!("zh_cn".parse::<Lang>(), Ok(Lang::ZhCn));
        assert!("fr".parse::<Lang>().is_err());
    }
}
