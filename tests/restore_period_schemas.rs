//! `restore-period` on two schemas of our own (see `common::period_schemas`): a partial loss
//! and changed rows under quoted names, TEXT dates of every kind, NUMERIC amounts and a
//! trigger (rollback journal); a month at +08:00 of Unix-second dates with AUTOINCREMENT keys
//! (WAL).

mod common;
use common::period::{counts, dump, number, Setup};
use common::period_schemas::*;
use common::Env;

#[test]
fn schema_c_partial_loss_comes_back_and_changed_rows_only_with_overwrite() {
    let env = Env::new();
    let db = env.path("c.sqlite");
    schema_c(&db);
    let s = Setup::new(&env, "c", &db, BUSINESS_C);
    let snap = s.backup(&env);
    let restored = env.path("snap.sqlite");
    env.restore(&snap, &s.repo, &s.key, &restored);
    let inv = r#""Sales Invoice [2024]""#;
    let march = number(
        &restored,
        &format!("SELECT count(*) FROM {inv} AS i WHERE {MARCH_C}"),
    );
    let keys = dump(
        &restored,
        &format!(
            r#"SELECT "Invoice Code", "Invoice No" FROM {inv} AS i WHERE {MARCH_C} ORDER BY 2"#
        ),
    );
    let key = |k: usize| (keys[k][0].clone(), keys[k][1].clone());
    let c = rusqlite::Connection::open(&db).unwrap();
    // Two invoices lost with their children; a line and an upload of two others; one changed.
    let lines_lost: i64 = {
        let mut n = 0;
        for k in [0, 1] {
            let (code, no) = key(k);
            n += c
                .execute(
                    r#"DELETE FROM "Line Items" WHERE "Invoice Code" = ?1 AND "Invoice No" = ?2"#,
                    [&code, &no],
                )
                .unwrap() as i64;
            c.execute(
                r#"DELETE FROM "tax ""uploads""" WHERE "Code" = ?1 AND "No" = ?2"#,
                [&code, &no],
            )
            .unwrap();
            c.execute(
                &format!(r#"DELETE FROM {inv} WHERE "Invoice Code" = ?1 AND "Invoice No" = ?2"#),
                [&code, &no],
            )
            .unwrap();
        }
        n
    };
    let uploads_before = number(&restored, r#"SELECT count(*) FROM "tax ""uploads""""#);
    let (code2, no2) = key(2);
    let (code3, no3) = key(3);
    c.execute(r#"DELETE FROM "Line Items" WHERE "Line" = (SELECT min("Line") FROM "Line Items" WHERE "Invoice Code" = ?1 AND "Invoice No" = ?2)"#, [&code2, &no2]).unwrap();
    c.execute(r#"DELETE FROM "tax ""uploads""" WHERE rowid = (SELECT min(rowid) FROM "tax ""uploads""" WHERE "Code" = ?1 AND "No" = ?2) OR rowid = (SELECT min(rowid) FROM "tax ""uploads""" WHERE "Code" = ?3 AND "No" = ?4)"#, [&code2, &no2, &code3, &no3]).unwrap();
    c.execute(
        &format!(
            r#"UPDATE {inv} SET "Amount" = 1.5 WHERE "Invoice Code" = ?1 AND "Invoice No" = ?2"#
        ),
        [&code3, &no3],
    )
    .unwrap();
    c.execute(
        &format!(r#"INSERT INTO {inv} VALUES ('Z', 1, '2024-03-10', 7, 'Issued')"#),
        [],
    )
    .unwrap();
    let uploads_missing =
        (uploads_before - number(&db, r#"SELECT count(*) FROM "tax ""uploads""""#)) as usize;
    drop(c);

    let period = [
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-31",
        "--snapshot",
        snap.as_str(),
    ];
    let shown = s.period(&env, &period);
    assert_eq!(shown.code, 14, "{}", shown.stderr);
    let r = shown.json();
    assert_eq!(
        r["snapshot"]["invoices"], march,
        "the day as written, whatever the zone"
    );
    assert_eq!(counts(&r, "Sales Invoice [2024]"), (2, 1, 1));
    assert_eq!(counts(&r, "Line Items"), (lines_lost as usize + 1, 0, 0));
    assert_eq!(counts(&r, "tax \"uploads\""), (uploads_missing, 0, 0));
    let changed = &r["tables"][0]["changed"][0];
    assert_eq!(changed["columns"][0]["column"], "Amount", "{changed}");
    assert_eq!(changed["columns"][0]["live"], 1.5);

    // The trigger on "Line Items" refuses, unless allowed.
    let hash = common::sha256_file(&db);
    let mut apply: Vec<&str> = period.to_vec();
    apply.push("--apply");
    let refused = s.period(&env, &apply);
    assert_eq!(refused.code, 15, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--allow-triggers"),
        "{}",
        refused.stderr
    );
    assert_eq!(common::sha256_file(&db), hash);

    apply.push("--allow-triggers");
    let done = s.period(&env, &apply);
    assert_eq!(done.code, 0, "{}", done.stderr);
    let a = done.json()["applied"].clone();
    assert_eq!(a["inserted"]["Sales Invoice [2024]"], 2);
    assert_eq!(a["inserted"]["Line Items"], lines_lost + 1);
    assert_eq!(a["matches"], false, "the extra invoice stays: {a}");
    // The trigger fired once per line written.
    assert_eq!(
        number(&db, r#"SELECT count(*) FROM "line log""#),
        lines_lost + 1
    );
    // Every child row is the snapshot's again, rowids and AUTOINCREMENT keys kept.
    for sql in [
        r#"SELECT * FROM "Line Items" ORDER BY "Line""#,
        r#"SELECT rowid, * FROM "tax ""uploads""" ORDER BY rowid"#,
    ] {
        assert_eq!(dump(&db, sql), dump(&restored, sql), "{sql}");
    }
    assert!(
        number(
            &db,
            r#"SELECT seq FROM sqlite_sequence WHERE name = 'Line Items'"#
        ) >= number(&db, r#"SELECT max("Line") FROM "Line Items""#)
    );
    // The changed invoice is untouched...
    let amount = format!(
        r#"SELECT "Amount" FROM {inv} WHERE "Invoice No" = {}"#,
        match &no3 {
            rusqlite::types::Value::Integer(n) => *n,
            _ => unreachable!(),
        }
    );
    assert_eq!(
        dump(&db, &amount),
        vec![vec![rusqlite::types::Value::Real(1.5)]]
    );
    // ...until --overwrite-changed, which never deletes the extra one.
    apply.push("--overwrite-changed");
    let over = s.period(&env, &apply);
    assert_eq!(over.code, 0, "{}", over.stderr);
    assert_eq!(
        over.json()["applied"]["replaced"]["Sales Invoice [2024]"],
        1
    );
    let rows = format!(r#"SELECT * FROM {inv} WHERE "Invoice Code" <> 'Z' ORDER BY 1, 2"#);
    assert_eq!(dump(&db, &rows), dump(&restored, &rows));
    assert_eq!(
        number(
            &db,
            &format!(r#"SELECT count(*) FROM {inv} WHERE "Invoice Code" = 'Z'"#)
        ),
        1
    );
    assert!(common::sqlite_checks(&db).is_none());
}

#[test]
fn schema_d_month_at_an_offset_comes_back_with_its_autoincrement_keys() {
    let env = Env::new();
    let db = env.path("d.sqlite");
    schema_d(&db);
    let s = Setup::new(&env, "d", &db, BUSINESS_D);
    let snap = s.backup(&env);
    let restored = env.path("snap.sqlite");
    env.restore(&snap, &s.repo, &s.key, &restored);
    let march = number(
        &restored,
        &format!(r#"SELECT count(*) FROM "order" AS i WHERE {MARCH_D}"#),
    );
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(&format!(
        r#"DELETE FROM "order line" WHERE "order" IN (SELECT "id" FROM "order" AS i WHERE {MARCH_D});
           DELETE FROM "order" AS i WHERE {MARCH_D};
           UPDATE sqlite_sequence SET seq = 1 WHERE name = 'order';
           INSERT INTO "order" ("no", "when", "cents") VALUES ('NEW', {APRIL_AT_8} + 99, 5);"#
    ))
    .unwrap();
    drop(c);
    let period = ["--from", "2024-03", "--to", "2024-03", "--snapshot", "auto"];
    let shown = s.period(&env, &period);
    assert_eq!(shown.code, 14, "{}", shown.stderr);
    let r = shown.json();
    assert_eq!(r["snapshot"]["invoices"], march, "March at +08:00");
    assert_eq!(r["snapshot_id"], snap.as_str());
    assert!(
        r["choice"].as_str().unwrap().contains("the most"),
        "{}",
        r["choice"]
    );
    assert_eq!(counts(&r, "order").0, march as usize);
    // Not whole months: the snapshots are measured rather than read from their manifests.
    let part = s.period(
        &env,
        &[
            "--from",
            "2024-03-20",
            "--to",
            "2024-03-31",
            "--snapshot",
            "auto",
        ],
    );
    assert_eq!(part.code, 14, "{}", part.stderr);
    assert_eq!(part.json()["snapshot_id"], snap.as_str());

    let mut apply = period.to_vec();
    apply.push("--apply");
    let done = s.period(&env, &apply);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.json()["applied"]["matches"], true);
    let orders = format!(r#"SELECT * FROM "order" AS i WHERE {MARCH_D} ORDER BY "id""#);
    assert_eq!(dump(&db, &orders), dump(&restored, &orders));
    let lines = format!(
        r#"SELECT * FROM "order line" WHERE "order" IN (SELECT "id" FROM "order" AS i WHERE {MARCH_D}) ORDER BY 1, 2"#
    );
    assert_eq!(dump(&db, &lines), dump(&restored, &lines));
    assert!(
        number(&db, "SELECT seq FROM sqlite_sequence WHERE name = 'order'")
            >= number(
                &db,
                r#"SELECT max("id") FROM "order" AS i WHERE "no" <> 'NEW'"#
            )
    );
    assert_eq!(
        number(&db, r#"SELECT count(*) FROM "order" WHERE "no" = 'NEW'"#),
        1
    );
}
