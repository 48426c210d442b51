//! Duration text as written in config files: `250ms`, `2s`, `1.5s`, `5m`, `1h`.

use std::time::Duration;

/// Parse `"<number><unit>"` with unit `ms`, `s`, `m` or `h` (the number may have a
/// fraction). The unit is required: a bare `5` is refused rather than guessed.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "" => return Err(format!("`{t}` has no unit; write it as e.g. `{t}s` or `{t}ms`")),
        other => {
            return Err(format!(
                "`{other}` is not a duration unit; use ms, s, m or h (e.g. `250ms`, `1.5s`)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{t}` is not a duration; write e.g. `250ms`, `1.5s`, `5m`"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("`{t}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn units_are_read_exactly() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5ms"), Ok(Duration::from_millis(5)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "5",
            "s",
            "5 parsecs",
            "1e400s",
            "-1s",
            "..s",
            "ms5",
            "9999999999999999999999h",
            "١s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
