//! How durations and sizes are written: the same in every language (units are symbols).

/// A duration in milliseconds, in its largest sensible unit: `850 ms`, `12.3 s`,
/// `4 min 05 s`, `2 h 05 min`, `3 d 04 h`.
pub fn duration(ms: u64) -> String {
    const S: u64 = 1000;
    const MIN: u64 = 60 * S;
    const H: u64 = 60 * MIN;
    const D: u64 = 24 * H;
    if ms < S {
        format!("{ms} ms")
    } else if ms < MIN {
        // Tenths, truncated: 59 999 ms is 59.9 s, never "60.0 s".
        format!("{}.{} s", ms / S, ms % S / 100)
    } else if ms < H {
        format!("{} min {:02} s", ms / MIN, ms % MIN / S)
    } else if ms < D {
        format!("{} h {:02} min", ms / H, ms % H / MIN)
    } else {
        format!("{} d {:02} h", ms / D, ms % D / H)
    }
}

/// A byte count in binary units: `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A chart value with no more digits than it needs: `0`, `0.25`, `12.5`, `1200`.
pub fn short_number(x: f64) -> String {
    let s = if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(999), "999 ms");
        assert_eq!(duration(1000), "1.0 s");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(59_999), "59.9 s");
        assert_eq!(duration(60_000), "1 min 00 s");
        assert_eq!(duration(245_000), "4 min 05 s");
        assert_eq!(duration(3_600_000), "1 h 00 min");
        assert_eq!(duration(7_500_000), "2 h 05 min");
        assert_eq!(duration(86_400_000 * 3 + 3_600_000 * 4), "3 d 04 h");
        assert_eq!(duration(u64::MAX), "213503982334 d 14 h");
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12 * 1024 * 1024), "12.0 MiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn chart_numbers() {
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(12.5), "12.5");
        assert_eq!(short_number(3.0), "3");
        assert_eq!(short_number(1200.0), "1200");
    }
}
