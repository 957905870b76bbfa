//! Times in scenario files: `"1500ms"`, `"2s"`, `"1m"`, `"250us"`, `"1.5s"`.
//!
//! Parsed exactly (decimal arithmetic on integers, never through a float), so `"0.1s"` is
//! 100,000,000 ns on every machine and a run replays bit-for-bit from its file.

use hawser_core::Duration;

/// Units a time may carry, with their length in nanoseconds. `µs` is accepted as a
/// spelling of `us` because people paste it.
const UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// More decimal places than any unit can turn into whole nanoseconds (the largest unit,
/// `h`, is 3.6·10¹² ns); the bound also keeps the arithmetic inside `u128`.
const MAX_DECIMALS: usize = 18;

const EXPECTED: &str = "expected a number followed by a unit (ns, us, ms, s, m, h), \
                        e.g. \"1500ms\", \"2s\" or \"1.5s\"";

/// Parses one time such as `"1500ms"` or `"1.5s"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.starts_with('-') {
        return Err(format!("invalid time {text:?}: times cannot be negative"));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("invalid time {text:?}: {EXPECTED}"));
    }
    let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        let what = if unit.is_empty() {
            "missing unit".to_owned()
        } else {
            format!("unknown unit {unit:?}")
        };
        return Err(format!("invalid time {text:?}: {what}; {EXPECTED}"));
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty()) {
        return Err(format!("invalid time {text:?}: {EXPECTED}"));
    }
    let too_large = || format!("invalid time {text:?}: too large (at most about 584 years)");
    let whole: u128 = whole.parse().map_err(|_| too_large())?;
    let mut nanos = whole.checked_mul(scale).ok_or_else(too_large)?;
    if !fraction.is_empty() {
        if fraction.len() > MAX_DECIMALS {
            return Err(format!(
                "invalid time {text:?}: more than {MAX_DECIMALS} decimal places"
            ));
        }
        let numerator: u128 = fraction.parse().map_err(|_| too_large())?;
        let denominator = 10u128.pow(fraction.len() as u32);
        let scaled = numerator * scale;
        if !scaled.is_multiple_of(denominator) {
            return Err(format!(
                "invalid time {text:?}: finer than the simulator's 1ns resolution"
            ));
        }
        nanos += scaled / denominator;
    }
    let nanos = u64::try_from(nanos).map_err(|_| too_large())?;
    Ok(Duration::from_nanos(nanos))
}

/// Parses a latency: a range `"1ms..5ms"` (uniform, both ends included) or one time
/// `"2ms"` (fixed), returned as `(low, high)`.
pub fn parse_latency(text: &str) -> Result<(Duration, Duration), String> {
    match text.split_once("..") {
        Some((low, high)) => {
            let low = parse_duration(low)?;
            let high = parse_duration(high)?;
            if low > high {
                return Err(format!(
                    "invalid latency {text:?}: the low end {low} is above the high end {high}"
                ));
            }
            Ok((low, high))
        }
        None => parse_duration(text).map(|d| (d, d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("0.25ms"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.000000000s"), Ok(Duration::from_secs(1)));
        assert!(
            parse_duration("1.5ns")
                .unwrap_err()
                .contains("1ns resolution")
        );
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(
            parse_duration("5 s")
                .unwrap_err()
                .contains("unknown unit \" s\"")
        );
        assert!(parse_duration("5sec").unwrap_err().contains("unknown unit"));
        for bad in ["", "s", ".5s", "5.s", "1.2.3s", " 5s", "1e3s"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(
                err.contains("expected a number followed by a unit"),
                "{bad}: {err}"
            );
        }
        assert!(
            parse_duration("99999999999h")
                .unwrap_err()
                .contains("too large")
        );
        let many_digits = format!("{}s", "9".repeat(60));
        assert!(
            parse_duration(&many_digits)
                .unwrap_err()
                .contains("too large")
        );
        let many_decimals = format!("1.{}s", "0".repeat(19));
        assert!(
            parse_duration(&many_decimals)
                .unwrap_err()
                .contains("decimal places")
        );
    }

    #[test]
    fn latency_is_a_range_or_one_time() {
        let ms = Duration::from_millis;
        assert_eq!(parse_latency("1ms..5ms"), Ok((ms(1), ms(5))));
        assert_eq!(parse_latency("2ms"), Ok((ms(2), ms(2))));
        assert!(
            parse_latency("5ms..1ms")
                .unwrap_err()
                .contains("above the high end")
        );
        assert!(parse_latency("1ms..").unwrap_err().contains("invalid time"));
    }
}
