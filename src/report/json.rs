//! JSON: the model exactly as serde writes it (docs/drill-report.schema.json). One report is
//! the object itself; several are an array, so a single drill reads without unwrapping.

use super::model::DrillReport;

pub fn render(reports: &[&DrillReport]) -> String {
    let written = match reports {
        [one] => serde_json::to_string_pretty(one),
        many => serde_json::to_string_pretty(many),
    };
    // The model holds only strings, numbers and enums, which always serialise; should that
    // ever change, the failure is reported in the output rather than by a panic.
    written.unwrap_or_else(|e| {
        let message = serde_json::Value::String(format!("report could not be written: {e}"));
        format!("{{\"error\": {message}}}")
    })
}
