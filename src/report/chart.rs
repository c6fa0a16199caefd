//! The RTO/RPO chart: an inline SVG drawn from `report.history`, oldest first. RTO (restore
//! time, seconds) and RPO (snapshot age, hours) differ by orders of magnitude, so each has its
//! own axis: RTO on the left, RPO on the right.

use super::html::esc;
use super::labels::{label, verdict, Key, Lang};
use super::model::{HistoryPoint, Verdict};
use super::units::{duration, short_number};
use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 56.0;
const RTO_COLOUR: &str = "#2563eb";
const RPO_COLOUR: &str = "#c2410c";
/// Beyond this many points, only every n-th date is written under the axis.
const MAX_X_LABELS: usize = 12;

/// What the chart draws besides the history: the objectives, as dashed lines.
pub struct Goals {
    pub rto_ms: Option<u64>,
    pub rpo_ms: Option<u64>,
}

pub fn svg(id: &str, history: &[HistoryPoint], goals: &Goals, lang: Lang) -> String {
    let l = |k| label(k, lang);
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        out,
        r#"<svg id="{}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{}">"#,
        esc(id),
        esc(l(Key::History)),
    );
    let _ = write!(out, "<title>{}</title>", esc(l(Key::History)));
    if history.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" class="empty">{}</text></svg>"#,
            WIDTH / 2.0,
            HEIGHT / 2.0,
            esc(l(Key::NoHistory))
        );
        return out;
    }

    let rto: Vec<f64> = history.iter().map(|p| seconds(p.rto_ms)).collect();
    let rpo: Vec<f64> = history.iter().map(|p| hours(p.rpo_ms)).collect();
    let rto_axis = Axis::fitting(&rto, goals.rto_ms.map(seconds));
    let rpo_axis = Axis::fitting(&rpo, goals.rpo_ms.map(hours));
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let bottom = TOP + plot_h;
    // One point sits in the middle; more spread across the plot.
    let x = |i: usize| {
        if history.len() == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (history.len() - 1) as f64
        }
    };
    let y = |axis: &Axis, v: f64| bottom - plot_h * (v / axis.max).clamp(0.0, 1.0);

    // Grid and both value axes.
    for t in 0..=Axis::TICKS {
        let f = t as f64 / Axis::TICKS as f64;
        let gy = bottom - plot_h * f;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#e5e7eb"/>"##,
            LEFT + plot_w
        );
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{RTO_COLOUR}">{}</text>"#,
            LEFT - 6.0,
            gy + 4.0,
            short_number(rto_axis.max * f)
        );
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="start" fill="{RPO_COLOUR}">{}</text>"#,
            LEFT + plot_w + 6.0,
            gy + 4.0,
            short_number(rpo_axis.max * f)
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#6b7280"/><line x1="{right:.1}" y1="{TOP}" x2="{right:.1}" y2="{bottom}" stroke="#6b7280"/><line x1="{LEFT}" y1="{bottom}" x2="{right:.1}" y2="{bottom}" stroke="#6b7280"/>"##,
        right = LEFT + plot_w
    );
    let mid = TOP + plot_h / 2.0;
    let _ = write!(
        out,
        r#"<text class="axis-title" x="18" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 18 {mid:.1})" fill="{RTO_COLOUR}">{}</text>"#,
        esc(l(Key::ChartRto))
    );
    let rx = WIDTH - 14.0;
    let _ = write!(
        out,
        r#"<text class="axis-title" x="{rx}" y="{mid:.1}" text-anchor="middle" transform="rotate(90 {rx} {mid:.1})" fill="{RPO_COLOUR}">{}</text>"#,
        esc(l(Key::ChartRpo))
    );
    let _ = write!(
        out,
        r#"<text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 8.0,
        esc(l(Key::ChartDrills))
    );

    // Objectives, dashed, in their series' colour.
    for (goal, axis, colour) in [
        (goals.rto_ms.map(seconds), &rto_axis, RTO_COLOUR),
        (goals.rpo_ms.map(hours), &rpo_axis, RPO_COLOUR),
    ] {
        if let Some(goal) = goal {
            let gy = y(axis, goal);
            let _ = write!(
                out,
                r#"<line class="objective" x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="{colour}" stroke-dasharray="6 4" stroke-opacity="0.7"/>"#,
                LEFT + plot_w
            );
        }
    }

    // The two series as lines, then one group of markers per drill.
    for (values, axis, colour, dash) in [
        (&rto, &rto_axis, RTO_COLOUR, ""),
        (&rpo, &rpo_axis, RPO_COLOUR, r#" stroke-dasharray="2 3""#),
    ] {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(axis, v)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
            points.join(" ")
        );
    }
    let step = history.len().div_ceil(MAX_X_LABELS);
    for (i, p) in history.iter().enumerate() {
        let failed = p.verdict == Verdict::Failed;
        let tip = format!(
            "#{} {} — RTO {}, RPO {} — {}",
            p.drill,
            p.started,
            duration(p.rto_ms),
            duration(p.rpo_ms),
            l(verdict(p.verdict))
        );
        let _ = write!(
            out,
            r#"<g class="point{}" data-drill="{}" data-verdict="{}" data-rto-ms="{}" data-rpo-ms="{}"><title>{}</title>"#,
            if failed { " failed" } else { "" },
            p.drill,
            if failed { "failed" } else { "passed" },
            p.rto_ms,
            p.rpo_ms,
            esc(&tip)
        );
        let stroke = if failed { "#b91c1c" } else { "#ffffff" };
        let _ = write!(
            out,
            r#"<circle class="rto" cx="{:.1}" cy="{:.1}" r="5" fill="{RTO_COLOUR}" stroke="{stroke}" stroke-width="2"/>"#,
            x(i),
            y(&rto_axis, rto[i])
        );
        let (sx, sy) = (x(i), y(&rpo_axis, rpo[i]));
        let _ = write!(
            out,
            r#"<rect class="rpo" x="{:.1}" y="{:.1}" width="9" height="9" fill="{RPO_COLOUR}" stroke="{stroke}" stroke-width="2"/>"#,
            sx - 4.5,
            sy - 4.5
        );
        if i % step == 0 || i + 1 == history.len() {
            let _ = write!(
                out,
                r#"<text class="x-label{}" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                if failed { " failed" } else { "" },
                x(i),
                bottom + 18.0,
                esc(short_date(&p.started))
            );
        }
        out.push_str("</g>");
    }

    legend(&mut out, goals, lang);
    out.push_str("</svg>");
    out
}

fn legend(out: &mut String, goals: &Goals, lang: Lang) {
    let l = |k| label(k, lang);
    let mut entries = vec![
        (l(Key::ChartRto), RTO_COLOUR, false),
        (l(Key::ChartRpo), RPO_COLOUR, false),
    ];
    if goals.rto_ms.is_some() {
        entries.push((l(Key::ChartRtoObjective), RTO_COLOUR, true));
    }
    if goals.rpo_ms.is_some() {
        entries.push((l(Key::ChartRpoObjective), RPO_COLOUR, true));
    }
    let _ = write!(out, r#"<g class="legend">"#);
    let mut lx = LEFT;
    for (text, colour, dashed) in entries {
        let dash = if dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<line x1="{lx}" y1="18" x2="{}" y2="18" stroke="{colour}" stroke-width="3"{dash}/><text x="{}" y="22">{}</text>"#,
            lx + 22.0,
            lx + 28.0,
            esc(text)
        );
        // Room for the text: CJK characters are about twice as wide as Latin ones.
        let width: f64 = text
            .chars()
            .map(|c| if c.is_ascii() { 7.0 } else { 13.0 })
            .sum();
        lx += 28.0 + width + 20.0;
    }
    out.push_str("</g>");
}

/// `2026-11-23T22:47:37Z` reads as `11-23` under the axis; anything else as given.
fn short_date(started: &str) -> &str {
    started
        .get(5..10)
        .filter(|_| started.len() >= 10)
        .unwrap_or(started)
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn hours(ms: u64) -> f64 {
    ms as f64 / 3_600_000.0
}

/// A value axis from 0 to a round maximum.
struct Axis {
    max: f64,
}

impl Axis {
    const TICKS: usize = 4;

    /// The smallest round maximum (1, 2, 2.5 or 5 times a power of ten per tick) that holds
    /// every value and the objective; 1 when all are zero.
    fn fitting(values: &[f64], goal: Option<f64>) -> Axis {
        let top = values
            .iter()
            .copied()
            .chain(goal)
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max);
        if top <= 0.0 {
            return Axis { max: 1.0 };
        }
        let raw_step = top / Self::TICKS as f64;
        let power = 10f64.powf(raw_step.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * power)
            .find(|&s| s >= raw_step)
            .unwrap_or(10.0 * power);
        Axis {
            max: step * Self::TICKS as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(drill: i64, rto_ms: u64, rpo_ms: u64) -> HistoryPoint {
        HistoryPoint {
            drill,
            started: format!("2026-11-{:02}T03:00:00Z", drill),
            verdict: if drill % 2 == 0 {
                Verdict::Passed
            } else {
                Verdict::Failed
            },
            rto_ms,
            rpo_ms,
        }
    }

    const NO_GOALS: Goals = Goals {
        rto_ms: None,
        rpo_ms: None,
    };

    #[test]
    fn axes_round_up() {
        assert_eq!(Axis::fitting(&[], None).max, 1.0);
        assert_eq!(Axis::fitting(&[0.0], None).max, 1.0);
        assert_eq!(Axis::fitting(&[3.7], None).max, 4.0);
        assert_eq!(Axis::fitting(&[3.7], Some(30.0)).max, 40.0);
        assert_eq!(Axis::fitting(&[0.3], None).max, 0.4);
        assert_eq!(Axis::fitting(&[95.0], None).max, 100.0);
        assert_eq!(Axis::fitting(&[f64::NAN, 2.0], None).max, 2.0);
    }

    #[test]
    fn one_group_per_drill() {
        for n in [0, 1, 2, 10, 40] {
            let history: Vec<_> = (1..=n)
                .map(|i| point(i, 1000 * i as u64, 3_600_000))
                .collect();
            let svg = svg("chart", &history, &NO_GOALS, Lang::En);
            assert_eq!(
                svg.matches("<g class=\"point").count(),
                n as usize,
                "{n} points"
            );
            assert!(svg.starts_with("<svg id=\"chart\"") && svg.ends_with("</svg>"));
            assert!(!svg.contains("NaN"), "{svg}");
        }
        let empty = svg("chart", &[], &NO_GOALS, Lang::ZhCn);
        assert!(empty.contains("暂无演练历史"));
    }

    #[test]
    fn objectives_are_drawn_and_in_the_legend() {
        let goals = Goals {
            rto_ms: Some(300_000),
            rpo_ms: Some(86_400_000),
        };
        let svg = svg("chart", &[point(1, 1000, 1000)], &goals, Lang::En);
        assert_eq!(svg.matches("class=\"objective\"").count(), 2);
        assert!(svg.contains("RTO objective") && svg.contains("RPO objective"));
    }

    #[test]
    fn dates_shorten() {
        assert_eq!(short_date("2026-11-23T22:47:37Z"), "11-23");
        assert_eq!(short_date("today"), "today");
        assert_eq!(short_date("2026-1"), "2026-1");
    }
}
