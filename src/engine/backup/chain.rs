//! When an incremental backup is taken as a full instead. A restore decompresses every frame
//! that holds a page it needs, and when a day's changes are spread over the whole file (an
//! invoice paid here, a row added there, and the indexes over them), nearly every frame an
//! incremental stored still holds one. So restoring the newest snapshot of a chain reads
//! about the database plus every page byte the incrementals since the last full stored, and a
//! chain of thirty days takes three times as long to restore as a full. Counting those bytes
//! per source and target, and taking a full once they reach a share of the database, bounds
//! what any restore reads.

/// The share of the database's size, in percent, that the incrementals since the last full
/// may store before the next backup is a full: a restore then reads at most about twice
/// what a full's does.
pub const DEFAULT_FULL_AFTER_CHANGED: u32 = 100;

/// Reads a limit as written on the command line or in a policy: a percent of the database
/// (`100` or `100%`, from 1 to 10000), or `off`. The error is one sentence.
pub fn parse_full_after_changed(text: &str) -> Result<Option<u32>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match t.strip_suffix('%').unwrap_or(t).trim().parse::<u32>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "{text:?} is not a limit for full backups; give a percent of the database's size from 1 to 10000 (such as 100), or off"
        )),
    }
}

/// Why a backup of a database of `database_bytes` is to be full although no full was asked
/// for, when the incrementals since the last full stored `changed_since_full` page bytes and
/// the limit is `limit_percent` of the database (`None`: never).
pub(super) fn full_because(
    changed_since_full: u64,
    database_bytes: u64,
    limit_percent: Option<u32>,
) -> Option<String> {
    let limit = limit_percent?;
    if database_bytes == 0 {
        return None;
    }
    let percent = changed_since_full as u128 * 100 / database_bytes as u128;
    (percent >= limit as u128).then(|| {
        format!(
            "taken in full: the incremental snapshots since the last full stored changed pages worth {percent}% of the database (the limit is {limit}%, --full-after-changed)"
        )
    })
}

/// The count to record after a backup: nothing for a full, else what it adds.
pub(super) fn changed_after(full: bool, changed_since_full: u64, bytes_new: u64) -> u64 {
    match full {
        true => 0,
        false => changed_since_full.saturating_add(bytes_new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_is_due_once_the_chain_stored_the_limit() {
        assert_eq!(full_because(99, 100, Some(100)), None);
        let why = full_because(100, 100, Some(100)).expect("due at the limit");
        assert!(why.contains("100% of the database"), "{why}");
        assert!(full_because(26, 100, Some(25)).is_some());
        assert_eq!(full_because(u64::MAX, 100, None), None);
        // A database of unknown size never turns a backup full.
        assert_eq!(full_because(5, 0, Some(1)), None);
    }

    #[test]
    fn limits_are_percents_or_off() {
        assert_eq!(parse_full_after_changed("100"), Ok(Some(100)));
        assert_eq!(parse_full_after_changed(" 25% "), Ok(Some(25)));
        assert_eq!(parse_full_after_changed("OFF"), Ok(None));
        for bad in ["0", "-5", "10001", "half", "", "50%%"] {
            let e = parse_full_after_changed(bad).expect_err(bad);
            assert!(e.contains("from 1 to 10000"), "{e}");
        }
    }

    #[test]
    fn a_full_starts_the_count_again() {
        assert_eq!(changed_after(true, 500, 40), 0);
        assert_eq!(changed_after(false, 500, 40), 540);
        assert_eq!(changed_after(false, u64::MAX, 40), u64::MAX);
    }
}
