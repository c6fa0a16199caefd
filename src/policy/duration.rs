//! Durations in policies (`rpo`, `rto`, `keep_within`, `prune_grace`, `timeout`, `jitter`): how
//! they are written and read, with one sentence for a value that is not one.

use serde::Deserializer;
use std::time::Duration;

/// How a duration is written in a policy: whole numbers with a unit `s`, `m`, `h` or `d`, larger
/// units first, each at most once: `90s`, `15m`, `26h`, `2d`, `1h30m`. (Hand-written rather than
/// humantime, which also takes `15min`, `2 days`, months, years and zero.)
pub(super) const DURATION_HINT: &str = "write it like 90s, 15m, 26h or 2d";

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

pub(super) fn rpo<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d, "rpo")
}

pub(super) fn rto<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d, "rto")
}

pub(super) fn keep_within<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d, "keep_within")
}

pub(super) fn prune_grace<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d, "prune_grace")
}

pub(super) fn notify_timeout<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    duration(d, "timeout")
}

pub(super) fn jitter<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d, "jitter")
}
