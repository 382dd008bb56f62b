//! Slot extraction: the order numbers, tracking numbers, amounts and dates a user's text
//! mentions.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

fn regex(pattern: &str) -> Regex {
    // The patterns are constants of this module, covered by its tests.
    Regex::new(pattern).unwrap_or_else(|e| panic!("slot regex {pattern:?}: {e}"))
}

/// Tracking numbers: 2–4 uppercase letters then 10–14 digits.
static TRACKING: LazyLock<Regex> = LazyLock::new(|| regex(r"[A-Z]{2,4}[0-9]{10,14}"));
/// An order number right after a keyword.
static ORDER_KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(?:订单编号|订单号码|订单号|订单|order\s*(?:number|no\.?|id|#)?|#)\s*(?:是|为|[:：#])?\s*([0-9]{8,12})",
    )
});
/// Any digit run (bare order numbers are checked by length and neighbours).
static DIGITS: LazyLock<Regex> = LazyLock::new(|| regex(r"[0-9]+"));
/// Amounts with a currency sign in front.
static AMOUNT_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)([¥￥$]|RMB|CNY|USD)\s*([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(\.[0-9]{1,2})?")
});
/// Amounts with a currency word after.
static AMOUNT_SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(\.[0-9]{1,2})?\s*(元|块钱|块|人民币|rmb|yuan|dollars?|bucks|usd)",
    )
});
/// `2026-11-24`, `2026/11/24`, `2026.11.24`, `2026年11月24日`.
static DATE_YMD: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"([0-9]{4})\s*(?:[-/.]|年)\s*([0-9]{1,2})\s*(?:[-/.]|月)\s*([0-9]{1,2})\s*(?:日|号)?")
});
/// `11月24日`, `11月24号`.
static DATE_MD_ZH: LazyLock<Regex> =
    LazyLock::new(|| regex(r"([0-9]{1,2})\s*月\s*([0-9]{1,2})\s*(?:日|号)"));
/// `11/24` (month first).
static DATE_MD_SLASH: LazyLock<Regex> = LazyLock::new(|| regex(r"([0-9]{1,2})/([0-9]{1,2})"));
/// `Nov 24`, `November 24th`.
static DATE_MONTH_NAME: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?\s+([0-9]{1,2})(?:st|nd|rd|th)?\b",
    )
});

/// Byte ranges already claimed by an extracted slot.
#[derive(Default)]
struct Claimed(Vec<(usize, usize)>);

impl Claimed {
    fn overlaps(&self, start: usize, end: usize) -> bool {
        self.0.iter().any(|&(s, e)| start < e && s < end)
    }
    fn claim(&mut self, start: usize, end: usize) {
        self.0.push((start, end));
    }
}

fn char_before(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

fn char_after(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

/// Whether the match `start..end` is not glued to ASCII letters or digits on either side.
fn bounded_alnum(text: &str, start: usize, end: usize) -> bool {
    !char_before(text, start).is_some_and(|c| c.is_ascii_alphanumeric())
        && !char_after(text, end).is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Whether the digit run `start..end` has no digit right next to it.
fn bounded_digits(text: &str, start: usize, end: usize) -> bool {
    !char_before(text, start).is_some_and(|c| c.is_ascii_digit())
        && !char_after(text, end).is_some_and(|c| c.is_ascii_digit())
}

fn looks_like_mobile(digits: &str) -> bool {
    let b = digits.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
}

fn valid_month_day(month: &str, day: &str) -> Option<(u32, u32)> {
    let m: u32 = month.parse().ok()?;
    let d: u32 = day.parse().ok()?;
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((m, d))
}

fn month_number(name: &str) -> Option<u32> {
    let n = name.to_ascii_lowercase();
    let months = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    months
        .iter()
        .position(|m| n.starts_with(m))
        .map(|i| i as u32 + 1)
}

/// Normalises full-width digits, letters and common full-width signs to ASCII, keeping byte
/// offsets meaningless but content equal; used before matching.
fn to_halfwidth(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
                char::from_u32(c as u32 - 0xFF10 + 0x30).unwrap_or(c)
            }
            '\u{FF0F}' => '/',
            '\u{FF0D}' => '-',
            '\u{FF0E}' => '.',
            '\u{FF03}' => '#',
            '\u{FF04}' => '$',
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect()
}

/// Finds the slot values a user's text mentions.
///
/// Keys (only those found are present):
///
/// * `tracking_no`: 2–4 uppercase letters followed by 10–14 digits (`SF1234567890`), not glued
///   to other letters or digits.
/// * `order_id`: an 8–12 digit run right after `订单`/`订单号`/`order`/`order no.`/`#`;
///   failing that, the first bare 8–12 digit run that is not part of another slot and does not
///   look like a mainland mobile number (11 digits `1[3-9]…`).
/// * `amount`: `¥199`, `￥199.5`, `199元`, `199块`, `$20.5`, `20 dollars`, `1,299元`; normalised to
///   `¥199` for yuan and `$20.5` for dollars.
/// * `date`: `2026-11-24`, `2026/11/24`, `2026年11月24日` (normalised to `2026-11-24`);
///   `11月24日`, `11/24`, `Nov 24` (normalised to `11-24`).
///
/// The first match of each kind wins. Full-width digits and letters count as their ASCII forms.
pub fn extract_slots(text: &str) -> BTreeMap<String, String> {
    let text = to_halfwidth(text);
    let text = text.as_str();
    let mut slots = BTreeMap::new();
    let mut claimed = Claimed::default();

    for m in TRACKING.find_iter(text) {
        if bounded_alnum(text, m.start(), m.end()) {
            slots.insert("tracking_no".to_owned(), m.as_str().to_owned());
            claimed.claim(m.start(), m.end());
            break;
        }
    }

    for caps in ORDER_KEYWORD.captures_iter(text) {
        let Some(digits) = caps.get(1) else { continue };
        if bounded_digits(text, digits.start(), digits.end())
            && !claimed.overlaps(digits.start(), digits.end())
        {
            slots.insert("order_id".to_owned(), digits.as_str().to_owned());
            claimed.claim(digits.start(), digits.end());
            break;
        }
    }

    extract_date(text, &mut slots, &mut claimed);
    extract_amount(text, &mut slots, &mut claimed);

    if !slots.contains_key("order_id") {
        for m in DIGITS.find_iter(text) {
            let len = m.as_str().len();
            if (8..=12).contains(&len)
                && !claimed.overlaps(m.start(), m.end())
                && !char_before(text, m.start())
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '.')
                && !char_after(text, m.end()).is_some_and(|c| c == '.' || c == ',')
                && !looks_like_mobile(m.as_str())
            {
                slots.insert("order_id".to_owned(), m.as_str().to_owned());
                claimed.claim(m.start(), m.end());
                break;
            }
        }
    }
    slots
}

fn extract_date(text: &str, slots: &mut BTreeMap<String, String>, claimed: &mut Claimed) {
    for caps in DATE_YMD.captures_iter(text) {
        let (Some(all), Some(y), Some(m), Some(d)) =
            (caps.get(0), caps.get(1), caps.get(2), caps.get(3))
        else {
            continue;
        };
        if !bounded_digits(text, all.start(), d.end()) || claimed.overlaps(all.start(), all.end()) {
            continue;
        }
        if let Some((m, d)) = valid_month_day(m.as_str(), d.as_str()) {
            slots.insert("date".to_owned(), format!("{}-{m:02}-{d:02}", y.as_str()));
            claimed.claim(all.start(), all.end());
            return;
        }
    }
    let candidates = [&*DATE_MD_ZH, &*DATE_MD_SLASH];
    for re in candidates {
        for caps in re.captures_iter(text) {
            let (Some(all), Some(m), Some(d)) = (caps.get(0), caps.get(1), caps.get(2)) else {
                continue;
            };
            if !bounded_digits(text, all.start(), d.end())
                || claimed.overlaps(all.start(), all.end())
                || char_after(text, d.end()) == Some('/')
            {
                continue;
            }
            if let Some((m, d)) = valid_month_day(m.as_str(), d.as_str()) {
                slots.insert("date".to_owned(), format!("{m:02}-{d:02}"));
                claimed.claim(all.start(), all.end());
                return;
            }
        }
    }
    for caps in DATE_MONTH_NAME.captures_iter(text) {
        let (Some(all), Some(name), Some(d)) = (caps.get(0), caps.get(1), caps.get(2)) else {
            continue;
        };
        if claimed.overlaps(all.start(), all.end()) {
            continue;
        }
        if let Some(m) = month_number(name.as_str()) {
            if let Some((m, d)) = valid_month_day(&m.to_string(), d.as_str()) {
                slots.insert("date".to_owned(), format!("{m:02}-{d:02}"));
                claimed.claim(all.start(), all.end());
                return;
            }
        }
    }
}

fn extract_amount(text: &str, slots: &mut BTreeMap<String, String>, claimed: &mut Claimed) {
    let mut found: Option<(usize, usize, String)> = None;
    for caps in AMOUNT_PREFIX.captures_iter(text) {
        let (Some(all), Some(sign), Some(int)) = (caps.get(0), caps.get(1), caps.get(2)) else {
            continue;
        };
        if claimed.overlaps(all.start(), all.end()) || !bounded_digits(text, int.start(), all.end())
        {
            continue;
        }
        let frac = caps.get(3).map_or("", |f| f.as_str());
        let symbol = if sign.as_str() == "$" || sign.as_str().eq_ignore_ascii_case("usd") {
            "$"
        } else {
            "¥"
        };
        found = Some((
            all.start(),
            all.end(),
            format!("{symbol}{}{frac}", int.as_str()),
        ));
        break;
    }
    for caps in AMOUNT_SUFFIX.captures_iter(text) {
        let (Some(all), Some(int), Some(unit)) = (caps.get(0), caps.get(1), caps.get(3)) else {
            continue;
        };
        if found.as_ref().is_some_and(|(s, _, _)| *s < all.start()) {
            break;
        }
        if claimed.overlaps(all.start(), all.end())
            || char_before(text, int.start()).is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
            || (unit.as_str().is_ascii()
                && char_after(text, all.end()).is_some_and(|c| c.is_ascii_alphabetic()))
        {
            continue;
        }
        let frac = caps.get(2).map_or("", |f| f.as_str());
        let u = unit.as_str().to_ascii_lowercase();
        let symbol = if u.starts_with("dollar") || u == "bucks" || u == "usd" {
            "$"
        } else {
            "¥"
        };
        found = Some((
            all.start(),
            all.end(),
            format!("{symbol}{}{frac}", int.as_str()),
        ));
        break;
    }
    if let Some((start, end, value)) = found {
        slots.insert("amount".to_owned(), value);
        claimed.claim(start, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_chinese_slots() {
        let s = extract_slots(
            "我的订单号是2024113051，快递单号SF1234567890，退款199元，11月24日下的单",
        );
        assert_eq!(s["order_id"], "2024113051");
        assert_eq!(s["tracking_no"], "SF1234567890");
        assert_eq!(s["amount"], "¥199");
        assert_eq!(s["date"], "11-24");
    }

    #[test]
    fn extracts_english_slots() {
        let s = extract_slots(
            "Order #12345678 was charged $20.5 on 2026-11-24, tracking YT12345678901234",
        );
        assert_eq!(s["order_id"], "12345678");
        assert_eq!(s["amount"], "$20.5");
        assert_eq!(s["date"], "2026-11-24");
        assert_eq!(s["tracking_no"], "YT12345678901234");
        let s = extract_slots("I paid 20 dollars on 11/24 for order 987654321");
        assert_eq!(s["amount"], "$20");
        assert_eq!(s["date"], "11-24");
        assert_eq!(s["order_id"], "987654321");
    }
}
