//! The reconciliation report's words in English and Simplified Chinese. Data (keys, dates,
//! amounts, paths, ids) is never translated.

use crate::report::Lang;

/// English label, Simplified Chinese label.
const LABELS: &[(&str, &str)] = &[
    ("Matches", "一致"),
    ("Differences", "有差异"),
    ("Reconciliation", "对账"),
    ("Source", "数据源"),
    ("List", "清单"),
    ("Period", "期间"),
    ("Snapshots searched", "已搜索的快照"),
    ("Started", "开始时间"),
    ("Host", "主机"),
    ("Totals", "合计"),
    ("Invoices", "发票数"),
    ("Amount", "金额"),
    ("Database", "数据库"),
    ("List − database", "清单 − 数据库"),
    ("In the list, not in the database", "清单有、数据库无"),
    ("In the database, not in the list", "数据库有、清单无"),
    ("Amount or date differs", "金额或日期不一致"),
    ("In the list more than once", "清单中重复"),
    ("Warnings", "警告"),
    ("Warning", "警告"),
    ("Invoice", "发票"),
    ("Row", "行"),
    ("Rows", "行"),
    ("Date", "日期"),
    ("Newest snapshot with it", "含此发票的最新快照"),
    ("Since", "最早含此发票的快照"),
    ("Differs", "不一致项"),
    ("List date", "清单日期"),
    ("Database date", "数据库日期"),
    ("List amount", "清单金额"),
    ("Database amount", "数据库金额"),
    ("amount", "金额"),
    ("date", "日期"),
    ("None.", "无。"),
    ("none", "无"),
    ("(the newest)", "（最新快照）"),
    ("no date", "无日期"),
    ("no amount", "无金额"),
    ("the list holds no invoices", "清单中没有发票"),
    ("none (no invoice needed it)", "无（无需搜索）"),
];

/// `en` in `lang`; English when no translation is known.
pub fn tr(en: &'static str, lang: Lang) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::ZhCn => LABELS
            .iter()
            .find(|(e, _)| *e == en)
            .map_or(en, |(_, zh)| zh),
    }
}

/// The summary's counts: only in the list, only in the database, differing, duplicated.
pub fn counts(n: [usize; 4], lang: Lang) -> String {
    let [list, db, differing, duplicated] = n;
    match lang {
        Lang::En => format!(
            "{list} in the list only, {db} in the database only, {differing} differing, {duplicated} duplicated"
        ),
        Lang::ZhCn => format!(
            "仅清单有 {list} 张，仅数据库有 {db} 张，不一致 {differing} 张，重复 {duplicated} 张"
        ),
    }
}

/// How the list was read: the header row, the sheet, the rows passed over, snapshot counts.
pub fn header_row(n: usize, lang: Lang) -> String {
    match lang {
        Lang::En => format!("header row {n}"),
        Lang::ZhCn => format!("表头在第 {n} 行"),
    }
}

pub fn sheet(name: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("sheet {name}"),
        Lang::ZhCn => format!("工作表 {name}"),
    }
}

pub fn skipped(rows: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("rows without a key skipped: {rows}"),
        Lang::ZhCn => format!("跳过无发票号的行：{rows}"),
    }
}

pub fn snapshots(target: &str, n: usize, lang: Lang) -> String {
    match lang {
        Lang::En => format!("{target} ({n} snapshots)"),
        Lang::ZhCn => format!("{target}（{n} 个快照）"),
    }
}

pub fn period(from: &str, to: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("period {from} … {to}"),
        Lang::ZhCn => format!("期间 {from} … {to}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_has_a_chinese_word_of_its_own() {
        for (en, zh) in LABELS {
            assert_eq!(tr(en, Lang::En), *en);
            assert_eq!(tr(en, Lang::ZhCn), *zh);
            assert!(!zh.is_ascii(), "{en}");
        }
        assert_eq!(tr("not a label", Lang::ZhCn), "not a label");
    }
}
