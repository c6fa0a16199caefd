//! The drill report renderers from the outside: JSON against docs/drill-report.schema.json,
//! Markdown for tickets, and HTML as a real browser sees it (headless Chromium: screenshot
//! and DOM).
//!
//! Schema validation uses Python's `jsonschema` package rather than a Rust crate: the tests
//! already need python3 (moto's S3 server), `scripts/test` installs it with pip like moto,
//! and it keeps a large dependency tree (regex engines, URL and date parsers) out of the
//! build on every machine.

use invoice_vault::facts::Amount;
use invoice_vault::report::model::{
    Check, CheckKind, DrillReport, HistoryPoint, LiveMonth, MonthRow, Objective, SnapshotRef,
    SourceRef, Status, Verdict, REPORT_SCHEMA,
};
use invoice_vault::report::{render, Format, Lang};
mod common;
use common::browser::{element, required, run_browser};

use std::process::Command;

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/drill-report.schema.json");
/// Text the HTML must escape; it sits in ids, names and detail sentences.
const NASTY: &str = r#"<b>bold</b> & "quoted" 'too'"#;

fn check(kind: CheckKind, subject: Option<&str>, status: Status) -> Check {
    Check {
        kind,
        subject: subject.map(str::to_string),
        status,
        expected: None,
        actual: None,
        detail: None,
    }
}

fn history(last_id: i64, last_verdict: Verdict) -> Vec<HistoryPoint> {
    (0..10)
        .map(|i| {
            let drill = last_id - 9 + i;
            HistoryPoint {
                drill,
                started: format!("2026-11-{:02}T03:00:00Z", 14 + i),
                verdict: if i == 9 {
                    last_verdict
                } else if i == 4 {
                    Verdict::Failed
                } else {
                    Verdict::Passed
                },
                rto_ms: 40_000 + 9_000 * i as u64,
                rpo_ms: 3_600_000 * (2 + (i as u64 % 4)),
            }
        })
        .collect()
}

fn base(id: i64, started: &str) -> DrillReport {
    DrillReport {
        schema: REPORT_SCHEMA.to_string(),
        id,
        started: started.to_string(),
        finished: started.replace("03:00:00", "03:02:10"),
        verdict: Verdict::Passed,
        source: SourceRef {
            name: "invoices-北京".to_string(),
            path: "/srv/erp/北京 分公司#1?%/invoices.db".to_string(),
        },
        target: "s3://vault/offsite".to_string(),
        snapshot: Some(SnapshotRef {
            id: "9f2c4e1ab7d35c08".to_string(),
            time: "2026-11-22T23:00:04Z".to_string(),
            kind: "incremental".to_string(),
            signer: Some("ivsig1qpz7x".to_string()),
        }),
        host: "backup-01".to_string(),
        rto: Objective::new(121_400, Some(900_000)),
        rpo: Objective::new(14_396_000, Some(86_400_000)),
        bytes_read: 734_003_200,
        checks: vec![
            check(
                CheckKind::Snapshot,
                Some("9f2c4e1ab7d35c08"),
                Status::Passed,
            ),
            check(CheckKind::Objects, None, Status::Passed),
            check(CheckKind::Sha256, None, Status::Passed),
            check(CheckKind::SourceCheck, Some("quick_check"), Status::Passed),
            check(CheckKind::IntegrityCheck, None, Status::Passed),
            check(CheckKind::ForeignKeyCheck, None, Status::Passed),
            Check {
                expected: Some("120433".into()),
                actual: Some("120433".into()),
                ..check(CheckKind::RowCount, Some("invoices"), Status::Passed)
            },
            check(CheckKind::InvoicesPerMonth, Some("2026-10"), Status::Passed),
            check(CheckKind::ChildRows, Some("invoice_lines"), Status::Passed),
            check(CheckKind::Rto, None, Status::Passed),
            check(CheckKind::Rpo, None, Status::Passed),
        ],
        months: vec![
            MonthRow {
                month: "2026-09".into(),
                expected_invoices: 4012,
                expected_total: Amount::Integer(91_220_315),
                actual_invoices: Some(4012),
                actual_total: Some(Amount::Integer(91_220_315)),
                live: None,
                ok: true,
            },
            MonthRow {
                month: "2026-10".into(),
                expected_invoices: 4177,
                expected_total: Amount::Real(95_113_020.5),
                actual_invoices: Some(4177),
                actual_total: Some(Amount::Real(95_113_020.5)),
                live: None,
                ok: true,
            },
        ],
        history: history(id, Verdict::Passed),
    }
}

fn passing() -> DrillReport {
    base(42, "2026-11-23T03:00:00Z")
}

/// A failed SHA-256 check, a numbering-gap warning, and a closed month that drifted in the
/// live database.
fn failing() -> DrillReport {
    let mut r = base(57, "2026-11-24T03:00:00Z");
    r.verdict = Verdict::Failed;
    r.rto = Objective::new(1_250_000, Some(900_000));
    r.checks[2] = Check {
        expected: Some("5be1c0…e9".into()),
        actual: Some("0d41aa…17".into()),
        detail: Some(format!(
            "the restored file differs from the manifest: {NASTY}"
        )),
        ..check(CheckKind::Sha256, None, Status::Failed)
    };
    r.checks.push(Check {
        expected: Some("0 missing".into()),
        actual: Some("3 missing (1041|1042|1077)".into()),
        detail: Some("series FP has 3 missing numbers between 1000 and 5188".into()),
        ..check(CheckKind::NumberingGaps, Some("FP"), Status::Warning)
    });
    r.checks.push(Check {
        expected: Some("4012 invoices, 91220315".into()),
        actual: Some("4011 invoices, 91219815".into()),
        detail: Some("closed month 2026-09 lost 1 invoice in the live database".into()),
        ..check(CheckKind::LiveDrift, Some("2026-09"), Status::Failed)
    });
    r.checks
        .push(check(CheckKind::RowCount, Some(NASTY), Status::Skipped));
    r.months[0].live = Some(LiveMonth {
        invoices: 4011,
        total: Amount::Integer(91_219_815),
        missing: 1,
        extra: 0,
        amount_difference: Amount::Integer(-500),
    });
    r.months[0].ok = false;
    r.history = history(57, Verdict::Failed);
    r
}

// ---------------------------------------------------------------- JSON and its schema

/// Validates each document against the schema with Python's `jsonschema`; the result per
/// document, in order (`Ok` or the validator's message).
fn validate(documents: &[String]) -> Vec<Result<(), String>> {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, doc) in documents.iter().enumerate() {
        let path = dir.path().join(format!("doc{i}.json"));
        std::fs::write(&path, doc).unwrap();
        paths.push(path);
    }
    let script = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    sys.exit(3)
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    errors = sorted(validator.iter_errors(json.load(open(path))), key=lambda e: list(e.path))
    print("OK" if not errors else "INVALID " + "; ".join(
        "/".join(map(str, e.path)) + ": " + e.message for e in errors).replace("\n", " "))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(SCHEMA)
        .args(&paths)
        .output()
        .unwrap_or_else(|e| panic!("python3 could not be run ({e}); run ./scripts/test"));
    if out.status.code() == Some(3) {
        panic!("Python's jsonschema package is missing; run ./scripts/test, which installs it");
    }
    assert!(
        out.status.success(),
        "schema validation failed to run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let results: Vec<_> = stdout
        .lines()
        .map(|l| match l {
            "OK" => Ok(()),
            other => Err(other.to_string()),
        })
        .collect();
    assert_eq!(results.len(), documents.len(), "{stdout}");
    results
}

#[test]
fn json_output_matches_the_schema() {
    let (pass, fail) = (passing(), failing());
    let mut no_snapshot = failing();
    no_snapshot.snapshot = None;
    no_snapshot.months.clear();
    no_snapshot.history.clear();
    no_snapshot.rpo = Objective::new(0, None);
    no_snapshot.months.push(MonthRow {
        actual_invoices: None,
        actual_total: None,
        ..pass.months[0].clone()
    });
    let docs = vec![
        render(std::slice::from_ref(&pass), Format::Json, Lang::En),
        render(std::slice::from_ref(&fail), Format::Json, Lang::En),
        render(&[pass.clone(), fail.clone()], Format::Json, Lang::En),
        render(&[no_snapshot], Format::Json, Lang::ZhCn),
        render(&[], Format::Json, Lang::En),
    ];
    for (i, result) in validate(&docs).into_iter().enumerate() {
        assert_eq!(result, Ok(()), "document {i}:\n{}", docs[i]);
    }
}

#[test]
fn the_schema_rejects_what_the_model_cannot_be() {
    let good: serde_json::Value =
        serde_json::from_str(&render(&[failing()], Format::Json, Lang::En)).unwrap();
    let broken = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut doc = good.clone();
        f(&mut doc);
        doc.to_string()
    };
    let docs = vec![
        broken(&|d| {
            d.as_object_mut().unwrap().remove("verdict");
        }),
        broken(&|d| d["verdict"] = "ok".into()),
        broken(&|d| d["schema"] = "ivault-drill-report/2".into()),
        broken(&|d| d["checks"][0]["status"] = "fine".into()),
        broken(&|d| d["checks"][0]["kind"] = "vibes".into()),
        broken(&|d| d["extra_field"] = 1.into()),
        broken(&|d| d["months"][0]["live"]["missing"] = (-1).into()),
        broken(&|d| d["rto"]["actual_ms"] = "121400".into()),
        broken(&|d| d["history"][0]["surprise"] = true.into()),
        broken(&|d| {
            d["snapshot"].as_object_mut().unwrap().remove("signer");
        }),
        "[{\"schema\": \"ivault-drill-report/1\"}]".to_string(),
    ];
    for (i, result) in validate(&docs).into_iter().enumerate() {
        assert!(
            result.is_err(),
            "broken document {i} passed the schema:\n{}",
            docs[i]
        );
    }
}

/// Every kind, status and verdict the model has is in the schema's enums, and no other.
#[test]
fn schema_enums_are_the_models() {
    // The match fails to compile when a kind is added, so this list cannot fall behind.
    let all_kinds = |k: CheckKind| match k {
        CheckKind::Snapshot
        | CheckKind::Objects
        | CheckKind::Sha256
        | CheckKind::SourceCheck
        | CheckKind::IntegrityCheck
        | CheckKind::ForeignKeyCheck
        | CheckKind::RowCount
        | CheckKind::InvoicesPerMonth
        | CheckKind::ChildRows
        | CheckKind::NumberingGaps
        | CheckKind::LiveDrift
        | CheckKind::Rto
        | CheckKind::Rpo => (),
    };
    let kinds = [
        CheckKind::Snapshot,
        CheckKind::Objects,
        CheckKind::Sha256,
        CheckKind::SourceCheck,
        CheckKind::IntegrityCheck,
        CheckKind::ForeignKeyCheck,
        CheckKind::RowCount,
        CheckKind::InvoicesPerMonth,
        CheckKind::ChildRows,
        CheckKind::NumberingGaps,
        CheckKind::LiveDrift,
        CheckKind::Rto,
        CheckKind::Rpo,
    ];
    kinds.iter().for_each(|&k| all_kinds(k));
    let statuses = [
        Status::Passed,
        Status::Warning,
        Status::Failed,
        Status::Skipped,
    ];
    let names = |values: Vec<serde_json::Value>| {
        let mut v: Vec<String> = values
            .into_iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let defs = &schema["$defs"];
    let enum_of = |v: &serde_json::Value| names(v["enum"].as_array().unwrap().clone());
    assert_eq!(
        enum_of(&defs["check"]["properties"]["kind"]),
        names(
            kinds
                .iter()
                .map(|k| serde_json::to_value(k).unwrap())
                .collect()
        )
    );
    assert_eq!(
        enum_of(&defs["check"]["properties"]["status"]),
        names(
            statuses
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect()
        )
    );
    assert_eq!(enum_of(&defs["verdict"]), ["failed", "passed"]);
    assert_eq!(
        defs["report"]["properties"]["schema"]["const"],
        REPORT_SCHEMA
    );
}

#[test]
fn json_is_the_object_for_one_and_an_array_newest_first_for_several() {
    let one = render(&[passing()], Format::Json, Lang::En);
    let back: DrillReport = serde_json::from_str(&one).unwrap();
    assert_eq!(back, passing());

    // Given oldest first, written newest first.
    let several = render(&[passing(), failing()], Format::Json, Lang::ZhCn);
    let back: Vec<DrillReport> = serde_json::from_str(&several).unwrap();
    assert_eq!(back, vec![failing(), passing()]);
    assert_eq!(render(&[], Format::Json, Lang::En), "[]");
}

// ---------------------------------------------------------------- Markdown

#[test]
fn markdown_leads_with_the_verdict_and_marks_differences() {
    let md = render(&[failing()], Format::Markdown, Lang::En);
    let first = md.lines().next().unwrap();
    assert!(
        first.contains("FAILED")
            && first.contains("invoices-北京")
            && first.contains("s3://vault/offsite"),
        "{first}"
    );
    assert!(md.contains("9f2c4e1ab7d35c08") && md.contains("2026-11-22T23:00:04Z"));
    assert!(
        md.contains("20 min 50 s (objective 15 min 00 s, not met)"),
        "{md}"
    );
    // Pipes in cells are escaped, so every table row has its six columns.
    assert!(md.contains("3 missing (1041\\|1042\\|1077)"), "{md}");
    let checks: Vec<&str> = md
        .lines()
        .filter(|l| {
            l.starts_with("| ")
                && (l.contains("✅") || l.contains("❌") || l.contains("⚠️") || l.contains("⏭️"))
        })
        .collect();
    assert_eq!(checks.len(), failing().checks.len(), "{md}");
    for row in &checks {
        let cells = row.replace("\\|", "").matches('|').count();
        assert_eq!(cells, 7, "{row}");
    }
    assert!(md.contains("**❌ failed**") && md.contains("⚠️ warning"));
    // The drifting month: live figures marked, the month flagged.
    let month = md.lines().find(|l| l.starts_with("| 2026-09 ")).unwrap();
    assert!(
        month.contains("**4011** ✗") && month.contains("**-500** ✗"),
        "{month}"
    );
    assert!(month.contains("✗ differs"), "{month}");
    let month = md.lines().find(|l| l.starts_with("| 2026-10 ")).unwrap();
    assert!(
        month.contains("✓ matches") && !month.contains("**"),
        "{month}"
    );

    let zh = render(&[failing()], Format::Markdown, Lang::ZhCn);
    let first = zh.lines().next().unwrap();
    assert!(
        first.contains("未通过") && first.contains("invoices-北京"),
        "{first}"
    );
    assert!(zh.contains("the restored file differs from the manifest"));
}

#[test]
fn markdown_shows_several_drills_newest_first() {
    let md = render(&[passing(), failing()], Format::Markdown, Lang::En);
    let headings: Vec<&str> = md.lines().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(headings.len(), 2, "{md}");
    assert!(headings[0].contains("FAILED") && headings[1].contains("PASSED"));
}

// ---------------------------------------------------------------- HTML

#[test]
fn html_is_self_contained_and_escaped() {
    for lang in [Lang::En, Lang::ZhCn] {
        let html = render(&[failing(), passing()], Format::Html, lang);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        for forbidden in ["<script", "<link", "<img", "<iframe", "@import", "url("] {
            assert!(!html.contains(forbidden), "HTML contains {forbidden}");
        }
        assert_no_external_resources(&html);
        assert!(!html.contains("<b>bold</b>"), "unescaped data in the HTML");
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; &#39;too&#39;"));
        assert!(html.contains("Noto Sans CJK SC") && html.contains("Microsoft YaHei"));
    }
}

/// No `src=`, `href=`, `action=` or `xlink:href=` leads off the page.
fn assert_no_external_resources(html: &str) {
    let lower = html.to_ascii_lowercase();
    for attr in ["src=", "href=", "action=", "srcset=", "poster=", "data="] {
        for (at, _) in lower.match_indices(attr) {
            let value = lower[at + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(
                !(value.starts_with("http:")
                    || value.starts_with("https:")
                    || value.starts_with("//")),
                "external resource: {}",
                &html[at..(at + 80).min(html.len())]
            );
        }
    }
    assert!(!lower.contains("http://") && !lower.contains("https://"));
}

#[test]
fn html_in_a_headless_browser() {
    let Some(browser) = required() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("profile");
    // IVAULT_KEEP_REPORTS=DIR keeps the pages and screenshots, to look at them.
    let dir = match std::env::var_os("IVAULT_KEEP_REPORTS") {
        Some(keep) => {
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::canonicalize(keep).unwrap()
        }
        None => tmp.path().to_path_buf(),
    };
    let cases = [
        ("failing-en", vec![failing()], Lang::En, "FAILED", "failed"),
        ("passing-en", vec![passing()], Lang::En, "PASSED", "passed"),
        (
            "failing-zh",
            vec![failing()],
            Lang::ZhCn,
            "未通过",
            "failed",
        ),
        (
            "several-en",
            vec![passing(), failing()],
            Lang::En,
            "FAILED",
            "failed",
        ),
    ];
    for (name, reports, lang, word, verdict) in cases {
        let page = dir.join(format!("{name}.html"));
        std::fs::write(&page, render(&reports, Format::Html, lang)).unwrap();

        let png = dir.join(format!("{name}.png"));
        run_browser(
            &browser,
            &profile,
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1280,2000".to_string(),
            ],
            &page,
        );
        let image = std::fs::read(&png).unwrap_or_else(|e| panic!("{name}: no screenshot: {e}"));
        assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        let size = |at: usize| u32::from_be_bytes(image[at..at + 4].try_into().unwrap());
        assert_eq!(
            (size(16), size(20)),
            (1280, 2000),
            "{name}: screenshot size"
        );
        assert!(
            image.len() > 30_000,
            "{name}: screenshot of {} bytes looks blank",
            image.len()
        );

        let dom = run_browser(&browser, &profile, &["--dump-dom".to_string()], &page);
        let (open, text) = element(&dom, "div", "verdict");
        assert!(
            open.contains(&format!("data-verdict=\"{verdict}\"")),
            "{name}: {open}"
        );
        assert!(text.contains(word), "{name}: verdict says {text:?}");
        // Data values are the same in every language.
        assert!(
            text.contains("invoices-北京") && text.contains("s3://vault/offsite"),
            "{text}"
        );

        let (_, snapshot) = element(&dom, "code", "snapshot");
        assert_eq!(snapshot, "9f2c4e1ab7d35c08");
        let (svg_open, _) = element(&dom, "svg", "chart");
        assert!(
            svg_open.starts_with("<svg"),
            "{name}: #chart is not an svg: {svg_open}"
        );
        let svg_start = dom.find("<svg id=\"chart\"").unwrap();
        let svg = &dom[svg_start..svg_start + dom[svg_start..].find("</svg>").unwrap()];
        assert_eq!(
            svg.matches("<g class=\"point").count(),
            10,
            "{name}: chart points"
        );
        assert_eq!(svg.matches("<circle class=\"rto\"").count(), 10, "{name}");
        assert_eq!(svg.matches("<rect class=\"rpo\"").count(), 10, "{name}");
        // The browser parsed the data as text: no element came out of a detail sentence.
        assert!(!dom.contains("<b>bold</b>"), "{name}: data became markup");
        if reports.len() > 1 {
            assert!(dom.contains("id=\"verdict-2\"") && dom.contains("id=\"chart-2\""));
        }

        match lang {
            Lang::ZhCn => {
                assert!(dom.contains("<html lang=\"zh-CN\">"), "{name}");
                for zh in [
                    "检查项",
                    "按月发票",
                    "近期演练的 RTO 与 RPO",
                    "RTO（秒）",
                    "线上发票数",
                ] {
                    assert!(dom.contains(zh), "{name}: no Chinese label {zh}");
                }
                assert!(
                    !dom.contains(">Checks<") && !text.contains("FAILED"),
                    "{name}"
                );
                // The English detail sentence and the table names stay as they are.
                assert!(dom.contains("closed month 2026-09 lost 1 invoice in the live database"));
                assert!(dom.contains(">invoices<") && dom.contains(">2026-09<"));
            }
            Lang::En => {
                assert!(dom.contains("<html lang=\"en\">"), "{name}");
                assert!(
                    dom.contains(">Checks<") && !dom.contains("检查项"),
                    "{name}"
                );
            }
        }
        if verdict == "failed" {
            assert!(
                dom.contains("<tr class=\"failed\""),
                "{name}: no failed row"
            );
            assert!(
                dom.contains("<tr class=\"warning\""),
                "{name}: no warning row"
            );
            assert!(
                dom.contains("class=\"num diff\">4011<"),
                "{name}: drift not highlighted"
            );
        }
    }
}

#[test]
fn html_handles_short_and_empty_histories() {
    for n in [0, 1] {
        let mut r = passing();
        r.history.truncate(n);
        let html = render(&[r], Format::Html, Lang::En);
        assert!(html.contains("<svg id=\"chart\""));
        assert_eq!(html.matches("<g class=\"point").count(), n);
        assert!(!html.contains("NaN") && !html.contains("=\"inf"));
        if n == 0 {
            assert!(html.contains("No drill history yet."));
        }
    }
    let html = render(&[], Format::Html, Lang::ZhCn);
    assert!(html.contains("没有可报告的演练。"));
}
