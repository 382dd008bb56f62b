//! Parsing the `--from-time` / `--to-time` arguments: milliseconds since the epoch, or an
//! RFC 3339 UTC time such as `2026-11-24T08:00:00Z` (fractional seconds allowed).

/// Parses a timestamp into milliseconds since the Unix epoch.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return if ms >= 0 { Ok(ms) } else { Err(format!("`{text}`: negative timestamp")) };
    }
    let bad = || format!("`{text}` is neither milliseconds since the epoch nor YYYY-MM-DDTHH:MM:SS[.fff]Z");
    let body = text.strip_suffix('Z').or_else(|| text.strip_suffix("+00:00")).ok_or_else(bad)?;
    let (date, time) = body.split_once(['T', ' ']).ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    let (whole, frac) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<&str> = whole.split(':').collect();
    if d.len() != 3 || t.len() != 3 {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let (y, m, day) = (num(d[0])?, num(d[1])?, num(d[2])?);
    let (hh, mm, ss) = (num(t[0])?, num(t[1])?, num(t[2])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    let millis = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(3).collect();
        if !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        num(&format!("{digits:0<3}"))?
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_millis_and_rfc3339() {
        assert_eq!(parse_timestamp("1764000000000"), Ok(1_764_000_000_000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_timestamp("2026-11-24T08:00:00.5Z"), Ok(1_795_507_200_500));
        assert_eq!(parse_timestamp("2000-03-01T00:00:00Z"), Ok(951_868_800_000));
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("2026-13-01T00:00:00Z").is_err());
        assert!(parse_timestamp("-5").is_err());
    }
}
