//! Every label a report shows, in English and Simplified Chinese, in one table. Data (ids,
//! names, months, numbers, the English `detail` sentences) is never translated.

use super::model::{CheckKind, Status, Verdict};
use super::ParseError;
use std::str::FromStr;

/// The language of a report's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhCn,
}

impl Lang {
    /// The BCP 47 tag, as HTML's `lang` attribute wants it.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }
}

impl FromStr for Lang {
    type Err = ParseError;

    /// `en` or `zh-CN` (any case, `_` for `-`).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "en" => Ok(Lang::En),
            "zh-cn" => Ok(Lang::ZhCn),
            _ => Err(ParseError {
                what: "report language",
                value: s.to_string(),
                expected: "en or zh-CN",
            }),
        }
    }
}

/// One table: the macro makes a key without both languages a syntax error.
macro_rules! labels {
    ($($key:ident => $en:literal, $zh:literal;)*) => {
        /// A label's key.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Key { $($key),* }

        impl Key {
            /// Every key, for the tests.
            pub const ALL: &'static [Key] = &[$(Key::$key),*];
        }

        /// The label of `key` in `lang`.
        pub fn label(key: Key, lang: Lang) -> &'static str {
            match (key, lang) {
                $((Key::$key, Lang::En) => $en, (Key::$key, Lang::ZhCn) => $zh,)*
            }
        }
    };
}

labels! {
    Title => "Restore drill", "恢复演练";
    VerdictPassed => "PASSED", "通过";
    VerdictFailed => "FAILED", "未通过";
    Drill => "Drill", "演练编号";
    Started => "Started", "开始时间";
    Finished => "Finished", "结束时间";
    Host => "Host", "主机";
    Source => "Source", "源数据库";
    Target => "Target", "备份目标";
    Snapshot => "Snapshot", "快照";
    SnapshotTime => "Snapshot time", "快照时间";
    Signer => "Signed by", "签名者";
    Unsigned => "unsigned", "未签名";
    NoSnapshot => "no snapshot could be chosen", "无法选定快照";
    Rto => "RTO (restore time)", "RTO（恢复耗时）";
    Rpo => "RPO (snapshot age)", "RPO（快照时效）";
    Objective => "objective", "目标";
    Met => "met", "达标";
    NotMet => "not met", "未达标";
    NoObjective => "no objective", "未设目标";
    BytesRead => "Bytes read", "读取数据量";
    Checks => "Checks", "检查项";
    Check => "Check", "检查";
    Subject => "Subject", "对象";
    Status => "Status", "状态";
    Expected => "Expected", "预期";
    Actual => "Actual", "实际";
    Detail => "Detail", "说明";
    StatusPassed => "passed", "通过";
    StatusWarning => "warning", "警告";
    StatusFailed => "failed", "失败";
    StatusSkipped => "skipped", "跳过";
    KindSnapshot => "Snapshot chosen", "快照选定";
    KindObjects => "Objects read", "对象读取";
    KindSha256 => "SHA-256 of the restored file", "恢复文件 SHA-256";
    KindSourceCheck => "Source check at backup", "备份时源库检查";
    KindIntegrityCheck => "Integrity check", "完整性检查";
    KindForeignKeyCheck => "Foreign key check", "外键检查";
    KindRowCount => "Row count", "行数";
    KindInvoicesPerMonth => "Invoices per month", "每月发票";
    KindChildRows => "Child rows", "明细行数";
    KindNumberingGaps => "Numbering gaps", "编号缺口";
    KindLiveDrift => "Live drift", "线上库偏差";
    KindRto => "Recovery time objective", "恢复时间目标";
    KindRpo => "Recovery point objective", "恢复点目标";
    Months => "Invoices by month", "按月发票";
    Month => "Month", "月份";
    ExpectedInvoices => "Expected invoices", "预期发票数";
    ExpectedTotal => "Expected total", "预期金额";
    ActualInvoices => "Actual invoices", "实际发票数";
    ActualTotal => "Actual total", "实际金额";
    LiveInvoices => "Live invoices", "线上发票数";
    LiveTotal => "Live total", "线上金额";
    Missing => "Missing", "缺失";
    Extra => "Extra", "多出";
    AmountDifference => "Amount difference", "金额差额";
    Match => "Match", "一致性";
    Matches => "matches", "一致";
    Differs => "differs", "不一致";
    Unreadable => "unreadable", "无法读取";
    NoMonths => "No invoice figures (the source has no business description).", "无发票数据（源库未配置业务描述）。";
    History => "RTO and RPO of recent drills", "近期演练的 RTO 与 RPO";
    ChartRto => "RTO (seconds)", "RTO（秒）";
    ChartRpo => "RPO (hours)", "RPO（小时）";
    ChartRtoObjective => "RTO objective", "RTO 目标";
    ChartRpoObjective => "RPO objective", "RPO 目标";
    ChartDrills => "Drill (start date)", "演练（开始日期）";
    NoHistory => "No drill history yet.", "暂无演练历史。";
    NoReports => "No drills to report.", "没有可报告的演练。";
}

pub fn verdict(v: Verdict) -> Key {
    match v {
        Verdict::Passed => Key::VerdictPassed,
        Verdict::Failed => Key::VerdictFailed,
    }
}

pub fn status(s: Status) -> Key {
    match s {
        Status::Passed => Key::StatusPassed,
        Status::Warning => Key::StatusWarning,
        Status::Failed => Key::StatusFailed,
        Status::Skipped => Key::StatusSkipped,
    }
}

pub fn kind(k: CheckKind) -> Key {
    match k {
        CheckKind::Snapshot => Key::KindSnapshot,
        CheckKind::Objects => Key::KindObjects,
        CheckKind::Sha256 => Key::KindSha256,
        CheckKind::SourceCheck => Key::KindSourceCheck,
        CheckKind::IntegrityCheck => Key::KindIntegrityCheck,
        CheckKind::ForeignKeyCheck => Key::KindForeignKeyCheck,
        CheckKind::RowCount => Key::KindRowCount,
        CheckKind::InvoicesPerMonth => Key::KindInvoicesPerMonth,
        CheckKind::ChildRows => Key::KindChildRows,
        CheckKind::NumberingGaps => Key::KindNumberingGaps,
        CheckKind::LiveDrift => Key::KindLiveDrift,
        CheckKind::Rto => Key::KindRto,
        CheckKind::Rpo => Key::KindRpo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_cjk(s: &str) -> bool {
        s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn every_key_has_both_languages() {
        for &key in Key::ALL {
            let (en, zh) = (label(key, Lang::En), label(key, Lang::ZhCn));
            assert!(!en.trim().is_empty(), "{key:?} has no English label");
            assert!(
                en.is_ascii(),
                "{key:?}: English label {en:?} is not English"
            );
            assert!(has_cjk(zh), "{key:?}: Chinese label {zh:?} has no Chinese");
        }
    }

    #[test]
    fn labels_within_a_group_are_distinct() {
        // Two check kinds or statuses worded alike could not be told apart in a report.
        for lang in [Lang::En, Lang::ZhCn] {
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
            let mut words: Vec<&str> = kinds.iter().map(|&k| label(kind(k), lang)).collect();
            words.sort();
            words.dedup();
            assert_eq!(words.len(), kinds.len(), "{lang:?}");
            let statuses = [
                Status::Passed,
                Status::Warning,
                Status::Failed,
                Status::Skipped,
            ];
            let mut words: Vec<&str> = statuses.iter().map(|&s| label(status(s), lang)).collect();
            words.sort();
            words.dedup();
            assert_eq!(words.len(), statuses.len(), "{lang:?}");
        }
    }

    #[test]
    fn verdicts_in_both_languages() {
        assert_eq!(label(verdict(Verdict::Passed), Lang::En), "PASSED");
        assert_eq!(label(verdict(Verdict::Failed), Lang::En), "FAILED");
        assert_eq!(label(verdict(Verdict::Passed), Lang::ZhCn), "通过");
        assert_eq!(label(verdict(Verdict::Failed), Lang::ZhCn), "未通过");
        assert_eq!(Lang::ZhCn.tag(), "zh-CN");
    }
}
