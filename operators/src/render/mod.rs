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
//!
//! * [`templates`]: template parsing and filling, and the bot's fixed questions.
//! * [`slots`]: slot extraction from user text ([`extract_slots`]).

pub mod slots;
pub mod templates;

pub use slots::extract_slots;
pub use templates::{
    ask_for_slot, clarify, is_valid_slot_name, parse_template, render, sanitize_slot_value,
    template_slots, RenderError, Segment, TemplateError, MAX_SLOT_CHARS,
};
