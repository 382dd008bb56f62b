//! Answer rendering: slot extraction from user text, template filling, and the questions the
//! bot asks when a slot is missing or retrieval found nothing.
//!
//! Templates are knowledge-base answers with `{slot}` placeholders (`{order_id}`, `{amount}`…).
//! A slot name is ASCII `[A-Za-z_][A-Za-z0-9_]*`. `{{` and `}}` stand for literal braces; any
//! other brace that does not open or close a placeholder makes the template malformed
//! ([`TemplateError`]).
//!
//! Rendering does not escape markup (a later layer HTML-escapes the whole answer), but it
//! guarantees that slot values bring in no braces, no control characters and no invisible
//! formatting characters (bidi overrides, zero-width characters), and that each value is at most
//! [`MAX_SLOT_CHARS`] characters long. Substitution is a single pass: a value is never
//! interpreted as a template.
//!
//! ```
//! use std::collections::BTreeMap;
//! use switchboard_operators::render::{extract_slots, render};
//!
//! let slots = extract_slots("订单号 2024113051 的退款 ¥199 什么时候到？");
//! assert_eq!(slots["order_id"], "2024113051");
//! assert_eq!(slots["amount"], "¥199");
//! let text = render("订单 {order_id} 的退款 {amount} 已原路退回。", &slots).unwrap();
//! assert_eq!(text, "订单 2024113051 的退款 ¥199 已原路退回。");
//! ```

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use switchboard_schemas::Locale;

/// Longest slot value, in characters, that [`render`] puts into an answer; longer values are
/// cut at this length.
pub const MAX_SLOT_CHARS: usize = 64;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Literal text (`{{`/`}}` already turned into single braces).
    Text(String),
    /// A `{slot}` placeholder, holding the slot name.
    Slot(&'a str),
}

/// Why a template cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` without its `}` (or a `{` inside a placeholder), at this byte offset.
    #[error("unbalanced braces: `{{` at byte {0} is not closed")]
    UnclosedBrace(usize),
    /// A `}` that closes nothing, at this byte offset.
    #[error("unbalanced braces: `}}` at byte {0} closes nothing")]
    StrayClosingBrace(usize),
    /// A placeholder whose name is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("invalid placeholder name `{0}`")]
    InvalidSlotName(String),
}

/// Why [`render`] produced no text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// These slots (sorted, without duplicates) are used by the template but have no value
    /// (or only an empty one after sanitising). Ask for them with [`ask_for_slot`].
    #[error("missing slots: {}", .0.join(", "))]
    MissingSlots(Vec<String>),
    /// The template itself is malformed.
    #[error("malformed template: {0}")]
    Template(#[from] TemplateError),
}

/// True when `name` is a valid slot name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_slot_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits a template into literal text and `{slot}` placeholders.
///
/// `{{` and `}}` are literal braces. Fails on an unclosed `{`, a stray `}` or an invalid slot
/// name.
pub fn parse_template(template: &str) -> Result<Vec<Segment<'_>>, TemplateError> {
    // Braces are ASCII, so byte offsets of braces are always char boundaries.
    let bytes = template.as_bytes();
    let mut segments = Vec::new();
    let mut text = String::new(); // pending literal text
    let mut run_start = 0; // start of the pending literal run not yet copied into `text`
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b @ (b'{' | b'}') if bytes.get(i + 1) == Some(&b) => {
                text.push_str(&template[run_start..i]);
                text.push(char::from(b));
                i += 2;
                run_start = i;
            }
            b'{' => {
                let close = template[i + 1..]
                    .find(['{', '}'])
                    .map(|off| i + 1 + off)
                    .filter(|&j| bytes[j] == b'}')
                    .ok_or(TemplateError::UnclosedBrace(i))?;
                let name = &template[i + 1..close];
                if !is_valid_slot_name(name) {
                    return Err(TemplateError::InvalidSlotName(name.to_owned()));
                }
                text.push_str(&template[run_start..i]);
                if !text.is_empty() {
                    segments.push(Segment::Text(std::mem::take(&mut text)));
                }
                segments.push(Segment::Slot(name));
                i = close + 1;
                run_start = i;
            }
            b'}' => return Err(TemplateError::StrayClosingBrace(i)),
            _ => i += 1,
        }
    }
    text.push_str(&template[run_start..]);
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    Ok(segments)
}

/// The slot names a template uses, in order of first use, without duplicates.
pub fn template_slots(template: &str) -> Result<Vec<&str>, TemplateError> {
    let mut names: Vec<&str> = Vec::new();
    for segment in parse_template(template)? {
        if let Segment::Slot(name) = segment {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// Cleans a slot value for display: drops control characters, braces and invisible formatting
/// characters (zero-width, bidi controls, BOM), trims surrounding whitespace and cuts the result
/// to [`MAX_SLOT_CHARS`] characters.
pub fn sanitize_slot_value(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .filter(|&c| !c.is_control() && c != '{' && c != '}' && !is_invisible_format(c))
        .collect();
    cleaned
        .trim()
        .chars()
        .take(MAX_SLOT_CHARS)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// Zero-width and bidi formatting characters that could disguise text.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Fills the `{slot}` placeholders of `template` from `slots`.
///
/// Values are cleaned with [`sanitize_slot_value`]; a slot whose value is absent or empty after
/// cleaning is missing. When any slot is missing, all missing names are returned (sorted) in
/// [`RenderError::MissingSlots`]. Slots the template does not use are ignored.
pub fn render(template: &str, slots: &BTreeMap<String, String>) -> Result<String, RenderError> {
    let segments = parse_template(template)?;
    let mut out = String::with_capacity(template.len() + 32);
    let mut missing: Vec<String> = Vec::new();
    for segment in &segments {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Slot(name) => {
                let value = slots
                    .get(*name)
                    .map(|v| sanitize_slot_value(v))
                    .unwrap_or_default();
                if value.is_empty() {
                    missing.push((*name).to_owned());
                } else {
                    out.push_str(&value);
                }
            }
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        missing.sort();
        missing.dedup();
        Err(RenderError::MissingSlots(missing))
    }
}

/// The question that asks the user for a missing slot, in the dialogue's language.
///
/// Known slots: `order_id`, `tracking_no`, `amount`, `date`; any other slot name gets a generic
/// question naming it.
pub fn ask_for_slot(slot: &str, locale: Locale) -> String {
    match (slot, locale) {
        ("order_id", Locale::ZhCn) => "请提供您的订单号（8–12 位数字）。".into(),
        ("order_id", Locale::En) => "Could you give me your order number (8–12 digits)?".into(),
        ("tracking_no", Locale::ZhCn) => "请提供快递单号（字母加数字，例如 SF1234567890）。".into(),
        ("tracking_no", Locale::En) => {
            "Could you give me the tracking number (letters and digits, e.g. SF1234567890)?".into()
        }
        ("amount", Locale::ZhCn) => "请问涉及的金额是多少（例如 ¥199）？".into(),
        ("amount", Locale::En) => "What amount is this about (e.g. $20.50)?".into(),
        ("date", Locale::ZhCn) => "请问是哪一天（例如 11月24日）？".into(),
        ("date", Locale::En) => "Which date is this about (e.g. 2026-11-24)?".into(),
        (other, Locale::ZhCn) => format!("请补充以下信息：{}。", sanitize_slot_value(other)),
        (other, Locale::En) => {
            format!(
                "Could you tell me the {}?",
                sanitize_slot_value(&other.replace('_', " "))
            )
        }
    }
}

/// A clarifying question for when retrieval found no good answer.
pub fn clarify(locale: Locale) -> String {
    match locale {
        Locale::ZhCn => {
            "抱歉，我还没完全理解您的问题。能再具体描述一下吗？比如涉及哪个订单、商品或业务。"
                .into()
        }
        Locale::En => "Sorry, I'm not sure I understood. Could you tell me a bit more, for \
                       example which order, product or service this is about?"
            .into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Slot extraction
// ---------------------------------------------------------------------------------------------

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

    fn slots(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_templates_with_escapes() {
        let segs = parse_template("a {x} b {{literal}} {y_2}").unwrap();
        let slots: Vec<_> = segs
            .iter()
            .filter_map(|s| {
                if let Segment::Slot(n) = s {
                    Some(*n)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(slots, ["x", "y_2"]);
        let r = render(
            "a {x} b {{literal}} {y_2}",
            &self::slots(&[("x", "1"), ("y_2", "2")]),
        );
        assert_eq!(r.unwrap(), "a 1 b {literal} 2");
        assert_eq!(render("无占位符", &BTreeMap::new()).unwrap(), "无占位符");
        assert_eq!(render("{{}}", &BTreeMap::new()).unwrap(), "{}");
    }

    #[test]
    fn rejects_malformed_templates() {
        assert_eq!(
            parse_template("a {x b"),
            Err(TemplateError::UnclosedBrace(2))
        );
        assert_eq!(
            parse_template("a {x {y} b"),
            Err(TemplateError::UnclosedBrace(2))
        );
        assert_eq!(
            parse_template("a } b"),
            Err(TemplateError::StrayClosingBrace(2))
        );
        assert_eq!(
            parse_template("{}"),
            Err(TemplateError::InvalidSlotName(String::new()))
        );
        assert!(matches!(
            parse_template("{订单}"),
            Err(TemplateError::InvalidSlotName(_))
        ));
        assert!(matches!(
            parse_template("{1x}"),
            Err(TemplateError::InvalidSlotName(_))
        ));
        assert!(matches!(
            render("a {x b", &BTreeMap::new()),
            Err(RenderError::Template(TemplateError::UnclosedBrace(2)))
        ));
    }

    #[test]
    fn template_slots_in_first_use_order() {
        assert_eq!(template_slots("{b} {a} {b}").unwrap(), ["b", "a"]);
    }

    #[test]
    fn sanitises_values() {
        assert_eq!(
            sanitize_slot_value("  12{3}\n\u{202E}4\u{200B}5\t "),
            "12345"
        );
        let long = "x".repeat(200);
        assert_eq!(sanitize_slot_value(&long).chars().count(), MAX_SLOT_CHARS);
        assert_eq!(sanitize_slot_value("订单{order_id}"), "订单order_id");
    }

    #[test]
    fn reports_all_missing_slots_sorted() {
        let err = render(
            "{order_id} {amount} {order_id}",
            &slots(&[("amount", "\u{7}")]),
        );
        assert_eq!(
            err,
            Err(RenderError::MissingSlots(vec![
                "amount".into(),
                "order_id".into()
            ]))
        );
    }

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
