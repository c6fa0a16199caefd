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
    let e =
        parse("[[target]]\nname = \"a\"\nurl = \"/x\"\n[[target]]\nname = \"a\"\nurl = \"/y\"\n")
            .unwrap_err();
    assert!(e.to_string().contains("used twice"), "{e}");
    let e = parse("[[target]]\nname = \"a\"\nurl = \"/x\"\nobject_lock_days = 3\n").unwrap_err();
    assert!(e.to_string().contains("only to s3://"), "{e}");
    let e = parse("[[target]]\nname = \"a\"\nurl = \"s3://b/x\"\nobject_lock_mode = \"strict\"\n")
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

#[test]
fn a_time_zone_is_an_iana_name_and_a_wrong_one_names_the_line() {
    use crate::scheduler::plan::Zone;
    let p = parse("[schedule]\ndrill = \"0 2 * * *\"\ntime_zone = \"Europe/Berlin\"\n").unwrap();
    let zone = p.schedule.as_ref().unwrap().zone().unwrap();
    assert_eq!(zone, Zone::Named(chrono_tz::Europe::Berlin));
    let p = parse("[schedule]\ndrill = \"0 2 * * *\"\n").unwrap();
    assert_eq!(p.schedule.unwrap().zone().unwrap(), Zone::Local);
    let e = parse("[schedule]\ndrill = \"0 2 * * *\"\ntime_zone = \"Europe/Berln\"\n").unwrap_err();
    assert_eq!(e.exit_code(), crate::error::exit::POLICY);
    assert_eq!(
        e.to_string(),
        "policy p.toml, line 3: [schedule] time_zone = \"Europe/Berln\" is not a time zone; did you mean \"Europe/Berlin\"?"
    );
    // Names are matched exactly, as the zone database spells them.
    let e = parse("[schedule]\ntime_zone = \"europe/berlin\"\n").unwrap_err();
    assert!(
        e.to_string().starts_with(
            "policy p.toml, line 2: [schedule] time_zone = \"europe/berlin\" is not a time zone"
        ),
        "{e}"
    );
    let e = parse("[schedule]\ntime_zone = \"CEST+2\"\n").unwrap_err();
    assert!(e.to_string().contains("write an IANA name such as"), "{e}");
}

#[test]
fn jitter_is_a_duration() {
    let p = parse("[schedule]\nincremental = \"0 * * * *\"\njitter = \"5m\"\n").unwrap();
    assert_eq!(p.schedule.unwrap().jitter, Some(Duration::from_secs(300)));
    let e = parse("[schedule]\nincremental = \"0 * * * *\"\njitter = \"5 minutes\"\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "policy p.toml, line 3: jitter = \"5 minutes\" is not a duration; write it like 90s, 15m, 26h or 2d"
    );
}

#[test]
fn prune_settings_are_read_and_a_bad_grace_names_its_line() {
    let p = parse("[retention]\nkeep_last = 3\nprune = false\nprune_grace = \"36h\"\n").unwrap();
    let r = p.retention.unwrap();
    assert_eq!(r.prune, Some(false));
    assert_eq!(r.prune_grace, Some(Duration::from_secs(36 * 3600)));
    let e = parse("[retention]\nkeep_last = 3\nprune_grace = \"0h\"\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "policy p.toml, line 3: prune_grace = \"0h\" is zero; give a longer duration, write it like 90s, 15m, 26h or 2d"
    );
}

#[test]
fn a_source_may_name_its_targets_and_an_unknown_one_names_the_line_and_the_nearest() {
    let text = SKETCH.replace(
        "path = \"/srv/invoices/beijing.sqlite\"",
        "path = \"/srv/invoices/beijing.sqlite\"\ntargets = [\"offsite\"]",
    );
    let p = parse(&text).unwrap();
    assert_eq!(p.targets_of(Some("invoices-beijing")), vec!["offsite"]);
    assert_eq!(p.targets_of(Some("elsewhere")), vec!["local", "offsite"]);

    let text = text.replace("targets = [\"offsite\"]", "targets = [\"ofsite\"]");
    let n = text.lines().position(|l| l.starts_with("targets")).unwrap() + 1;
    assert_eq!(
        parse(&text).unwrap_err().to_string(),
        format!(
            "policy p.toml, line {n}: source invoices-beijing names the target ofsite, which this policy does not define; did you mean offsite?"
        )
    );
}
