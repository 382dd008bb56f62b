//! Knowledge-base files: parsing and validation.
//!
//! A knowledge base is a list of entries, each with an id, a locale, an intent, example
//! questions and an answer template (see [`KbEntry`]). Files are either JSON Lines (`.jsonl`,
//! or `.json` holding one object per line or a single JSON array) or YAML (`.yaml`/`.yml`, a
//! top-level list):
//!
//! ```text
//! {"id":"zh-return-goods-001","locale":"zh-CN","intent":"return_goods","questions":["我要退货"],"answer":"好的，订单 {order_id} 的退货申请已提交。","slots":["order_id"]}
//! ```
//!
//! ```yaml
//! - id: zh-return-goods-001
//!   locale: zh-CN
//!   intent: return_goods
//!   questions: [我要退货, 这个东西怎么退]
//!   answer: 好的，订单 {order_id} 的退货申请已提交。
//!   slots: [order_id]
//! ```
//!
//! Parsing never stops at the first problem: every entry is checked and all problems are
//! collected ([`KbError::Invalid`] keeps the first [`MAX_REPORTED_PROBLEMS`] and the total
//! count). Each problem names the file, the line (JSON Lines: the line; YAML: the line where the
//! list item starts, when it can be found) and the entry's position in the file.

mod entry;
mod error;
mod parse;
#[cfg(test)]
mod tests;
mod validate;

pub use entry::{KbEntry, KbFormat, MAX_REPORTED_PROBLEMS, MAX_TEXT_CHARS};
pub use error::{KbError, KbProblem, Location, ProblemKind};
pub use parse::{load_kb, parse_kb_file, parse_kb_str, validate_entries};
