//! Answer templates: parsing `{slot}` placeholders, filling them with sanitised slot values,
//! and the questions the bot asks when a slot is missing or retrieval found nothing.

use std::collections::BTreeMap;

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
}
