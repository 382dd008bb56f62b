//! PII masking for Chinese and English customer-service text.
//!
//! Every piece of conversation text passes through [`mask`] before it is persisted, sent to
//! ClickHouse or logged. Four kinds of personal data are recognised ([`PiiKind`]):
//!
//! * **Mainland China mobile numbers**: 11 digits `1[3-9]…`, compact or grouped `3-4-4`, `3-8`,
//!   `7-4` with spaces or dashes, optionally after a `+86` / `86` / `0086` country prefix. Masked
//!   as `138****5678` (first 3 and last 4 digits kept; a country prefix stays as written).
//! * **Resident ID numbers** (GB 11643): 17 digits plus a digit or `X`, only when the checksum
//!   ([`id_checksum_valid`]) holds; compact or grouped (`6-8-4`, `6-4-4-4`, `6-12`, `4-4-4-4-2`).
//!   Masked as `**************123X` (last 4 kept).
//! * **Bank card numbers**: 16–19 digits passing the Luhn check ([`luhn_valid`]); compact or
//!   grouped in fours (`6222 0212 3456 7890 128`) or `6-rest`. Masked as `***************0128`,
//!   always in compact form (the separators inside the number are dropped).
//! * **Email addresses** (ASCII `@` or full-width `＠`): the local part is replaced by its first
//!   character and `***`: `zhang.san@example.com` → `z***@example.com`.
//!
//! Digit groups may be separated by spaces, dashes, dots, underscores or brackets, ASCII or
//! full-width, mixed within one number (`(138) 1234-5678`); a gap of two or more spaces between
//! narrow separators ends a number. Full-width digits (`１３８…`) count as digits, and Chinese characters, punctuation and
//! whitespace are valid boundaries (`手机13812345678谢谢`). Numbers must be *bounded*: digits
//! directly next to other digits belong to the same number, so a mobile number inside a longer
//! digit run is not a mobile number, and a number directly after a Latin letter (tracking
//! numbers such as `SF13812345678`) is never PII. Order numbers (8–12 digits that are not a
//! mobile number) are left alone. When an 18-digit number is both a valid ID and Luhn-valid it
//! is reported as an ID.
//!
//! Masking is idempotent (`mask(mask(x)) == mask(x)`) and the output of [`mask`] never contains
//! PII according to [`find`]: the kept digits of a masked number sit next to a run of `*` and are
//! never glued to neighbouring digit groups, and an already masked email (`z***@…`) is skipped.
//!
//! ```
//! use switchboard_operators::pii::{self, PiiKind};
//!
//! let text = "您好，我的手机是138 1234 5678，邮箱 zhang.san@example.com，订单号 2024113051";
//! let masked = pii::mask(text);
//! assert_eq!(masked, "您好，我的手机是138****5678，邮箱 z***@example.com，订单号 2024113051");
//! assert!(!pii::contains_pii(&masked));
//!
//! let spans = pii::find(text);
//! assert_eq!(spans.len(), 2);
//! assert_eq!(spans[0].kind, PiiKind::Mobile);
//! assert_eq!(&text[spans[0].start..spans[0].end], "138 1234 5678");
//!
//! // Nothing to mask: the input is handed back without copying.
//! assert!(matches!(pii::mask("no personal data here"), std::borrow::Cow::Borrowed(_)));
//! ```

mod checksum;
mod email;
mod numbers;
mod span;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use checksum::{id_checksum_valid, luhn_valid};
use email::{email_matches, AT_SIGNS};
use numbers::{digit_value, is_check_x, scan_numbers};
pub use span::{PiiKind, PiiSpan};

/// Finds all PII in `text`.
///
/// The spans are sorted by `start` and never overlap. Offsets are byte offsets into `text`.
/// Never panics, whatever the input.
#[must_use]
pub fn find(text: &str) -> Vec<PiiSpan> {
    let has_digit = text.chars().any(|c| digit_value(c).is_some());
    let has_at = text.contains(AT_SIGNS);
    if !has_digit && !has_at {
        return Vec::new();
    }

    let emails = if has_at {
        email_matches(text)
    } else {
        Vec::new()
    };
    let mut spans: Vec<PiiSpan> = emails
        .iter()
        .filter(|m| !m.already_masked)
        .map(|m| PiiSpan {
            kind: PiiKind::Email,
            start: m.start,
            end: m.end,
        })
        .collect();

    if has_digit {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        // Characters inside an email address are opaque to the number scanner.
        let mut blocked = vec![false; chars.len()];
        let mut e = 0;
        for (i, &(off, _)) in chars.iter().enumerate() {
            while e < emails.len() && emails[e].end <= off {
                e += 1;
            }
            if e < emails.len() && emails[e].start <= off {
                blocked[i] = true;
            }
        }
        scan_numbers(text, &chars, &blocked, &mut spans);
    }

    spans.sort_by_key(|s| (s.start, s.end));
    spans
}

/// Returns `text` with every PII span found by [`find`] replaced by its masked form.
///
/// Mobile numbers become `138****5678`, ID numbers `**************123X`, bank cards
/// `***************0128` (compact, separators dropped) and emails `z***@example.com`.
/// Returns [`Cow::Borrowed`] when nothing was found. Idempotent: masking a masked text changes
/// nothing. Never panics, whatever the input.
#[must_use]
pub fn mask(text: &str) -> Cow<'_, str> {
    let spans = find(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for span in &spans {
        // `find` guarantees sorted, non-overlapping spans on char boundaries; `get` keeps this
        // panic-free even if that were ever violated.
        if span.start < pos {
            continue;
        }
        let (Some(before), Some(pii)) = (text.get(pos..span.start), text.get(span.start..span.end))
        else {
            continue;
        };
        out.push_str(before);
        render_masked(span.kind, pii, &mut out);
        pos = span.end;
    }
    out.push_str(text.get(pos..).unwrap_or_default());
    Cow::Owned(out)
}

/// Whether `text` contains any PII that [`mask`] would mask.
#[must_use]
pub fn contains_pii(text: &str) -> bool {
    !find(text).is_empty()
}

/// Appends the masked form of `pii` (the text of a span of kind `kind`) to `out`.
fn render_masked(kind: PiiKind, pii: &str, out: &mut String) {
    if kind == PiiKind::Email {
        match (pii.chars().next(), pii.find(AT_SIGNS)) {
            (Some(first), Some(at)) => {
                out.push(first);
                out.push_str("***");
                out.push_str(pii.get(at..).unwrap_or_default());
            }
            _ => out.push_str("***"),
        }
        return;
    }
    let normalised: Vec<char> = pii
        .chars()
        .filter_map(|c| {
            digit_value(c)
                .map(|d| char::from(b'0' + d))
                .or_else(|| is_check_x(c).then_some('X'))
        })
        .collect();
    let n = normalised.len();
    let keep_head = if kind == PiiKind::Mobile && n == 11 {
        3
    } else {
        0
    };
    let keep_tail = if n > 4 { 4 } else { 0 };
    for (i, &c) in normalised.iter().enumerate() {
        if i < keep_head || i >= n - keep_tail {
            out.push(c);
        } else {
            out.push('*');
        }
    }
}
