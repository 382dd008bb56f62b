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

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// The kind of personal data a [`PiiSpan`] covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    /// A mainland China mobile phone number (11 digits starting `1[3-9]`).
    Mobile,
    /// An 18-character resident ID number with a valid GB 11643 checksum.
    IdNumber,
    /// A 16–19 digit bank card number passing the Luhn check.
    BankCard,
    /// An email address.
    Email,
}

/// One piece of PII found in a text, as byte offsets into that text.
///
/// `text[start..end]` is the PII as written, including any spaces or dashes inside a grouped
/// number; a `+86` style country prefix in front of a mobile number is not part of the span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PiiSpan {
    /// What kind of PII the span holds.
    pub kind: PiiKind,
    /// Byte offset of the first byte of the span (always on a `char` boundary).
    pub start: usize,
    /// Byte offset one past the last byte of the span (always on a `char` boundary).
    pub end: usize,
}

/// Email addresses, with an ASCII or a full-width at sign (`＠`, as Chinese input methods type
/// it). The local part may contain `*` after its first character so that an already masked
/// address (`z***@example.com`) is still recognised as an email (and then skipped).
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[A-Za-z0-9._%+\-][A-Za-z0-9._%+\-*]*[@＠][A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    )
    .expect("the email regex is valid")
});

/// Most separator characters allowed between two digit groups of one number.
const MAX_SEPARATOR_CHARS: usize = 3;
/// Longest number (in digits) any window is checked for: 19-digit cards.
const MAX_WINDOW_DIGITS: usize = 19;
/// A run of at least this many `*` next to digits is taken to be a masked number.
const MASK_STAR_RUN: usize = 4;

/// Group layouts (digits per group) accepted for a mobile number.
const MOBILE_LAYOUTS: &[&[usize]] = &[&[11], &[3, 4, 4], &[3, 8], &[7, 4]];
/// Group layouts (characters per group, the check character included) accepted for an ID.
const ID_LAYOUTS: &[&[usize]] = &[&[18], &[6, 8, 4], &[6, 4, 4, 4], &[6, 12], &[4, 4, 4, 4, 2]];

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

/// The Luhn (mod 10) check used by bank card numbers.
///
/// `digits` must consist of ASCII digits only (at least two of them, the last being the check
/// digit); anything else (spaces, dashes, letters, an empty string) returns `false`.
///
/// ```
/// use switchboard_operators::pii::luhn_valid;
/// assert!(luhn_valid("4111111111111111"));
/// assert!(!luhn_valid("4111111111111112"));
/// assert!(!luhn_valid("4111 1111 1111 1111"));
/// ```
#[must_use]
pub fn luhn_valid(digits: &str) -> bool {
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// The GB 11643 checksum of an 18-character resident ID number.
///
/// `id18` must be exactly 17 ASCII digits followed by a check character, an ASCII digit or
/// `X`/`x`. The weighted sum of the first 17 digits (weights 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7,
/// 9, 10, 5, 8, 4, 2) modulo 11 selects the expected check character from `"10X98765432"`.
/// Anything else (wrong length, separators, full-width digits) returns `false`.
///
/// ```
/// use switchboard_operators::pii::id_checksum_valid;
/// assert!(id_checksum_valid("11010519491231002X"));
/// assert!(!id_checksum_valid("110105194912310021"));
/// ```
#[must_use]
pub fn id_checksum_valid(id18: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let bytes = id18.as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = bytes[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(&b, w)| u32::from(b - b'0') * w)
        .sum();
    // `sum % 11` is always < 11, so the index is in range.
    let expected = CHECK[(sum % 11) as usize];
    bytes[17].to_ascii_uppercase() == expected
}

// ---------------------------------------------------------------------------------------------
// Emails
// ---------------------------------------------------------------------------------------------

/// One email regex match, possibly shortened so that it does not overlap the next one.
struct EmailMatch {
    start: usize,
    end: usize,
    /// The local part already has the masked shape `c***`; it is opaque but not reported.
    already_masked: bool,
}

/// All email addresses in `text`. After each match the search resumes right after its `@`, so
/// that in a chain like `ab@cd.ef@gh.com` both local parts are found (and both get masked; the
/// first span is cut short where the second begins). Without this, masking the first address
/// would expose the second one to the next pass and masking would not be idempotent.
fn email_matches(text: &str) -> Vec<EmailMatch> {
    let mut out: Vec<EmailMatch> = Vec::new();
    let mut pos = 0;
    while pos <= text.len() {
        let Some(m) = EMAIL.find_at(text, pos) else {
            break;
        };
        let Some(at_rel) = m.as_str().find(AT_SIGNS) else {
            break;
        };
        let at = m.start() + at_rel;
        let at_len = m.as_str()[at_rel..]
            .chars()
            .next()
            .map_or(1, char::len_utf8);
        if let Some(prev) = out.last_mut() {
            if prev.end > m.start() {
                prev.end = m.start();
            }
        }
        let local = &m.as_str()[..at_rel];
        out.push(EmailMatch {
            start: m.start(),
            end: m.end(),
            already_masked: local.get(1..) == Some("***"),
        });
        pos = at + at_len;
    }
    out
}

/// The at signs an email address may be written with.
const AT_SIGNS: [char; 2] = ['@', '\u{FF20}'];

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/// The value of an ASCII or full-width digit.
fn digit_value(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '\u{FF10}'..='\u{FF19}' => u8::try_from(u32::from(c) - 0xFF10).ok(),
        _ => None,
    }
}

/// The check character `X` of an ID number, ASCII or full-width, either case.
fn is_check_x(c: char) -> bool {
    matches!(c, 'X' | 'x' | '\u{FF38}' | '\u{FF58}')
}

/// A Latin letter, ASCII or full-width. A number directly after one is not PII.
fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}')
}

/// Characters that may separate the digit groups of one number: spaces, dashes, dots,
/// underscores and brackets (`(138)1234-5678`), ASCII or full-width.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\u{00A0}'
            | '\u{3000}'
            | '-'
            | '\u{2010}'
            | '\u{2011}'
            | '\u{2012}'
            | '\u{2013}'
            | '\u{FF0D}'
            | '.'
            | '\u{FF0E}'
            | '_'
            | '('
            | ')'
            | '\u{FF08}'
            | '\u{FF09}'
    )
}

/// Whether a separator is a wide gap (two or more spaces): groups on either side of a wide gap
/// belong to one number only if all its separators are wide (`138  1234  5678`), so that
/// `4111 1111 1111 1111  138` stays two numbers. Narrow separators may be mixed, as people type
/// them (`138 1234-5678`, `(138)1234-5678`).
fn is_wide_gap(sep: &str) -> bool {
    sep.chars().filter(|c| c.is_whitespace()).count() >= 2
}

/// One maximal block of digits (plus possibly a trailing `X`) inside a number run.
struct Group {
    /// Byte offset of the first character.
    start: usize,
    /// Byte offset one past the last character.
    end: usize,
    /// The normalised characters: ASCII digits, and `X` last when `has_x`.
    chars: Vec<u8>,
    /// The group ends with an ID check character `X`.
    has_x: bool,
    /// The separator characters between the previous group and this one (empty for the first).
    sep: String,
}

/// Whether a run of `*` of length `stars` next to a number, with `beyond` on its far side,
/// looks like the output of [`mask`], so that the digits next to it are the kept part of a
/// masked number (`138****5678`, `***0128`) or the kept first character of a masked email
/// (`1***@qq.com`) and must not be combined with neighbouring digit groups.
fn is_mask_remnant(stars: usize, beyond: Option<char>) -> bool {
    stars >= MASK_STAR_RUN
        || beyond.is_some_and(|c| AT_SIGNS.contains(&c) || digit_value(c).is_some())
}

/// Whether a number run starting at char index `i` may start a PII number.
fn left_boundary_ok(chars: &[(usize, char)], i: usize) -> bool {
    let Some(prev) = i.checked_sub(1).map(|p| chars[p].1) else {
        return true;
    };
    if digit_value(prev).is_some() || is_latin_letter(prev) {
        return false;
    }
    if prev == '*' {
        let stars = chars[..i]
            .iter()
            .rev()
            .take_while(|&&(_, c)| c == '*')
            .count();
        let beyond = (i - stars).checked_sub(1).map(|p| chars[p].1);
        return !is_mask_remnant(stars, beyond);
    }
    true
}

/// Whether a number run ending just before char index `j` may end a PII number.
fn right_boundary_ok(chars: &[(usize, char)], j: usize) -> bool {
    let Some(&(_, next)) = chars.get(j) else {
        return true;
    };
    if digit_value(next).is_some() {
        return false;
    }
    if next == '*' {
        let stars = chars[j..].iter().take_while(|&&(_, c)| c == '*').count();
        let beyond = chars.get(j + stars).map(|&(_, c)| c);
        return !is_mask_remnant(stars, beyond);
    }
    true
}

/// Finds the numbers in `text` (outside `blocked` chars) and appends their spans to `out`.
fn scan_numbers(text: &str, chars: &[(usize, char)], blocked: &[bool], out: &mut Vec<PiiSpan>) {
    let n = chars.len();
    let is_digit_at = |k: usize| k < n && !blocked[k] && digit_value(chars[k].1).is_some();
    let mut i = 0;
    while i < n {
        if !is_digit_at(i) {
            i += 1;
            continue;
        }
        let left_ok = left_boundary_ok(chars, i);
        let mut groups = Vec::new();
        let mut j = i;
        let mut sep = String::new();
        loop {
            let start = chars[j].0;
            let mut group_chars = Vec::new();
            while is_digit_at(j) {
                if let Some(d) = digit_value(chars[j].1) {
                    group_chars.push(b'0' + d);
                }
                j += 1;
            }
            let mut has_x = false;
            if j < n && !blocked[j] && is_check_x(chars[j].1) {
                let after = chars.get(j + 1).map(|&(_, c)| c);
                if !after.is_some_and(|c| digit_value(c).is_some() || is_latin_letter(c)) {
                    group_chars.push(b'X');
                    has_x = true;
                    j += 1;
                }
            }
            let end = chars.get(j).map_or(text.len(), |&(off, _)| off);
            groups.push(Group {
                start,
                end,
                chars: group_chars,
                has_x,
                sep: std::mem::take(&mut sep),
            });

            let mut k = j;
            while k < n && k - j < MAX_SEPARATOR_CHARS && !blocked[k] && is_separator(chars[k].1) {
                k += 1;
            }
            if k > j && is_digit_at(k) {
                sep = chars[j..k].iter().map(|&(_, c)| c).collect();
                j = k;
            } else {
                break;
            }
        }
        let right_ok = right_boundary_ok(chars, j);
        classify_run(text, &groups, left_ok, right_ok, out);
        i = j.max(i + 1);
    }
}

/// Picks the PII numbers out of one run of digit groups, left to right, preferring at each
/// starting group an ID over a bank card (the longest) over a mobile number.
fn classify_run(
    text: &str,
    groups: &[Group],
    left_ok: bool,
    right_ok: bool,
    out: &mut Vec<PiiSpan>,
) {
    let mut a = 0;
    while a < groups.len() {
        if a == 0 && !left_ok {
            a += 1;
            continue;
        }
        match best_window(text, groups, a, right_ok) {
            Some((last, span)) => {
                out.push(span);
                a = last + 1;
            }
            None => a += 1,
        }
    }
}

/// The best PII window starting at group `a`: its last group index and span. A window is a
/// sequence of whole groups with the same separator between all of them.
fn best_window(text: &str, groups: &[Group], a: usize, right_ok: bool) -> Option<(usize, PiiSpan)> {
    let mut id = None;
    let mut card = None;
    let mut mobile = None;
    let mut lens: Vec<usize> = Vec::new();
    let mut joined: Vec<u8> = Vec::new();
    for (b, group) in groups.iter().enumerate().skip(a) {
        lens.push(group.chars.len());
        joined.extend_from_slice(&group.chars);
        if joined.len() > MAX_WINDOW_DIGITS {
            break;
        }
        if b + 1 == groups.len() && !right_ok {
            break;
        }
        // An `X` can only be the very last character of an ID.
        if groups[a..b].iter().any(|g| g.has_x) {
            break;
        }
        // A wide gap between narrow ones separates two numbers (see `is_wide_gap`).
        if b > a + 1 && is_wide_gap(&group.sep) != is_wide_gap(&groups[a + 1].sep) {
            break;
        }
        let Ok(s) = std::str::from_utf8(&joined) else {
            break;
        };
        let whole = PiiSpan {
            kind: PiiKind::Mobile,
            start: groups[a].start,
            end: group.end,
        };

        if id.is_none() && is_id_window(&lens, s) {
            id = Some((
                b,
                PiiSpan {
                    kind: PiiKind::IdNumber,
                    ..whole
                },
            ));
        }
        if group.has_x {
            // Only an ID may end in `X`, and no window may contain one further in.
            break;
        }
        if is_card_layout(&lens) && luhn_valid(s) {
            card = Some((
                b,
                PiiSpan {
                    kind: PiiKind::BankCard,
                    ..whole
                },
            ));
        }
        if mobile.is_none() {
            if MOBILE_LAYOUTS.contains(&lens.as_slice()) && is_mobile(s) {
                mobile = Some((b, whole));
            } else if lens.len() == 1 {
                // A country prefix written without a separator: 86138… or 0086138….
                let prefix = if s.len() == 13 && s.starts_with("86") {
                    Some(2)
                } else if s.len() == 15 && s.starts_with("0086") {
                    Some(4)
                } else {
                    None
                };
                if let Some(p) = prefix {
                    let rest = s.get(p..).unwrap_or_default();
                    let start = text
                        .get(group.start..group.end)
                        .and_then(|g| g.char_indices().nth(p))
                        .map(|(off, _)| group.start + off);
                    if let (true, Some(start)) = (is_mobile(rest), start) {
                        mobile = Some((b, PiiSpan { start, ..whole }));
                    }
                }
            }
        }
    }
    id.or(card).or(mobile)
}

/// An 18-character window in an accepted ID layout with a valid checksum.
fn is_id_window(lens: &[usize], s: &str) -> bool {
    s.len() == 18 && ID_LAYOUTS.contains(&lens) && id_checksum_valid(s)
}

/// 11 digits starting `1[3-9]`.
fn is_mobile(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 11
        && b.iter().all(u8::is_ascii_digit)
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
}

/// Group layouts accepted for a bank card of 16–19 digits: compact; groups of four with a last
/// group of 1–4 digits; or a 6-digit issuer group followed by the rest.
fn is_card_layout(lens: &[usize]) -> bool {
    let total: usize = lens.iter().sum();
    if !(16..=19).contains(&total) {
        return false;
    }
    match lens {
        [_] => true,
        [6, rest] => (10..=13).contains(rest),
        [init @ .., last] if init.len() >= 3 => {
            init.iter().all(|&l| l == 4) && (1..=4).contains(last)
        }
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<PiiKind> {
        find(text).into_iter().map(|s| s.kind).collect()
    }

    fn slices(text: &str) -> Vec<&str> {
        find(text)
            .into_iter()
            .map(|s| &text[s.start..s.end])
            .collect()
    }

    #[test]
    fn luhn_and_id_checksums() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("6222021234567890128"));
        assert!(!luhn_valid("6222021234567890127"));
        assert!(!luhn_valid(""));
        assert!(!luhn_valid("0"));
        assert!(!luhn_valid("4111-1111-1111-1111"));
        assert!(!luhn_valid("４１１１１１１１１１１１１１１１"));

        assert!(id_checksum_valid("11010519491231002X"));
        assert!(id_checksum_valid("11010519491231002x"));
        assert!(id_checksum_valid("110101199003071233"));
        assert!(!id_checksum_valid("110101199003071234"));
        assert!(!id_checksum_valid("11010119900307123"));
        assert!(!id_checksum_valid("1101011990030712355"));
        assert!(!id_checksum_valid("11010119900307123 5"));
        assert!(!id_checksum_valid("X10101199003071235"));
        assert!(!id_checksum_valid("一二三四五六七八九十一二三四五六七八"));
    }

    #[test]
    fn mobile_formats() {
        for (input, expected) in [
            ("13812345678", "138****5678"),
            ("138 1234 5678", "138****5678"),
            ("138-1234-5678", "138****5678"),
            ("138 12345678", "138****5678"),
            ("1381234 5678", "138****5678"),
            ("+86 138 1234 5678", "+86 138****5678"),
            ("+86-13812345678", "+86-138****5678"),
            ("+8613812345678", "+86138****5678"),
            ("8613812345678", "86138****5678"),
            ("008613812345678", "0086138****5678"),
            ("１３８１２３４５６７８", "138****5678"),
            ("１３８－１２３４－５６７８", "138****5678"),
        ] {
            assert_eq!(mask(input), expected, "input {input:?}");
            assert_eq!(kinds(input), [PiiKind::Mobile], "input {input:?}");
        }
    }

    #[test]
    fn mobile_span_excludes_country_prefix() {
        let text = "电话+8613812345678";
        assert_eq!(slices(text), ["13812345678"]);
        let text = "tel +86 138-1234-5678.";
        assert_eq!(slices(text), ["138-1234-5678"]);
    }

    #[test]
    fn bounded_numbers_only() {
        // Embedded in a longer digit run.
        assert!(!contains_pii("1234567890138123456781234"));
        assert!(!contains_pii("9913812345678"));
        assert!(!contains_pii("138123456789"));
        // Directly after Latin letters: tracking numbers.
        assert!(!contains_pii("SF13812345678"));
        assert!(!contains_pii("快递单号 SF1234567890"));
        assert!(!contains_pii("ＳＦ１３８１２３４５６７８"));
        // Not a mobile prefix.
        assert!(!contains_pii("12812345678"));
        assert!(!contains_pii("10086"));
        // Odd groupings are not mobile numbers.
        assert!(!contains_pii("1 3812345678"));
        assert!(!contains_pii("13 81 23 45 67 8"));
    }

    #[test]
    fn order_numbers_left_alone() {
        for text in [
            "订单号 2024113051",
            "订单号2024113051，请尽快发货",
            "order #12345678 and 987654321012",
            "订单 12345678 已发货",
        ] {
            assert!(!contains_pii(text), "{text:?}");
            assert!(matches!(mask(text), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn id_numbers() {
        assert_eq!(
            mask("身份证号110105194912310021"),
            "身份证号110105194912310021"
        );
        assert_eq!(
            mask("身份证号11010519491231002X"),
            "身份证号**************002X"
        );
        assert_eq!(
            mask("身份证号11010519491231002x。"),
            "身份证号**************002X。"
        );
        assert_eq!(mask("ID: 110105 19491231 002X"), "ID: **************002X");
        assert_eq!(
            mask("ID: 110105-1949-1231-002X ok"),
            "ID: **************002X ok"
        );
        assert_eq!(mask("110101199003071233"), "**************1233");
        assert_eq!(kinds("110101199003071233"), [PiiKind::IdNumber]);
        // An X followed by letters is not a check character.
        assert!(!contains_pii("11010519491231002Xyz"));
    }

    #[test]
    fn id_wins_over_card() {
        // 17 digits with a check digit that is both ID-valid and Luhn-valid.
        let id = (0u64..)
            .map(|n| format!("{:017}", 11010119900307000 + n))
            .find_map(|base| {
                (b'0'..=b'9')
                    .map(|d| format!("{base}{}", char::from(d)))
                    .find(|s| id_checksum_valid(s) && luhn_valid(s))
            })
            .expect("some ID is also Luhn-valid");
        assert_eq!(kinds(&id), [PiiKind::IdNumber]);
    }

    #[test]
    fn bank_cards() {
        assert_eq!(
            mask("卡号 6222 0212 3456 7890 128"),
            "卡号 ***************0128"
        );
        assert_eq!(
            mask("卡号6222-0212-3456-7890-128谢谢"),
            "卡号***************0128谢谢"
        );
        assert_eq!(mask("card 4111111111111111."), "card ************1111.");
        assert_eq!(mask("622202 1234567890128"), "***************0128");
        assert_eq!(kinds("4111 1111 1111 1111"), [PiiKind::BankCard]);
        // Invalid Luhn.
        assert!(!contains_pii("卡号 6222 0212 3456 7890 127"));
        assert!(!contains_pii("4111111111111112"));
    }

    #[test]
    fn emails() {
        assert_eq!(mask("zhang.san@example.com"), "z***@example.com");
        assert_eq!(
            mask("邮箱zhang.san@example.com谢谢"),
            "邮箱z***@example.com谢谢"
        );
        assert_eq!(mask("mail a@b.co, thanks"), "mail a***@b.co, thanks");
        assert_eq!(mask("13812345678@qq.com"), "1***@qq.com");
        assert_eq!(kinds("13812345678@qq.com"), [PiiKind::Email]);
        assert_eq!(mask("**li@x.cn**"), "**l***@x.cn**");
        // Already masked addresses are not PII any more.
        assert!(!contains_pii("z***@example.com"));
        assert!(!contains_pii("not an email: a@b, x@localhost"));
    }

    #[test]
    fn chained_emails_mask_idempotently() {
        let once = mask("ab@cd.ef@gh.com").into_owned();
        assert_eq!(once, "a***@c***@gh.com");
        assert_eq!(mask(&once), once);
    }

    #[test]
    fn several_in_one_sentence() {
        let text = "张先生，手机13812345678，身份证11010519491231002X，卡号6222021234567890128，\
                    邮箱zs@163.com，订单号2024113051。";
        assert_eq!(
            kinds(text),
            [
                PiiKind::Mobile,
                PiiKind::IdNumber,
                PiiKind::BankCard,
                PiiKind::Email
            ]
        );
        assert_eq!(
            mask(text),
            "张先生，手机138****5678，身份证**************002X，卡号***************0128，\
             邮箱z***@163.com，订单号2024113051。"
        );
        let text = "Call 139-0000-1111 or 13700002222, card 4111 1111 1111 1111";
        assert_eq!(
            mask(text),
            "Call 139****1111 or 137****2222, card ************1111"
        );
        // Two numbers separated by one space are still two numbers.
        assert_eq!(mask("13812345678 13912345678"), "138****5678 139****5678");
    }

    #[test]
    fn masked_remnants_do_not_join_neighbours() {
        // After masking, `5678 9012 3456 7890` must not look like a card.
        let text = "13812345678 9012 3456 7890 1234";
        let once = mask(text).into_owned();
        assert_eq!(mask(&once), once);
        assert!(!contains_pii(&once));
        // A markdown-bold number is still masked.
        assert_eq!(mask("**13812345678**"), "**138****5678**");
        // The kept first character of a masked email does not extend a card.
        let text = "6222 0212 3456 7890 3@4.cc@x.com";
        let once = mask(text).into_owned();
        assert_eq!(once, "6222 0212 3456 7890 3***@4***@x.com");
        assert_eq!(mask(&once), once);
    }

    #[test]
    fn a_wide_gap_separates_numbers_narrow_separators_mix() {
        // A card followed by a mobile number, two spaces apart: the `138` group must not be
        // taken as the tail of a 19-digit card.
        let text = "4111 1111 1111 1111  138 1234 5678";
        assert_eq!(mask(text), "************1111  138****5678");
        // Narrow separators as people mix them (found by topology/tests/pii_audit.rs).
        for typed in [
            "138 1234-5678",
            "138.1234.5678",
            "(138)1234-5678",
            "138_1234_5678",
            "(138) 1234-5678",
        ] {
            assert_eq!(
                mask(typed).replace(['(', ')', ' '], ""),
                "138****5678",
                "{typed}"
            );
        }
        assert_eq!(mask("4111.1111.1111.1111"), "************1111");
        assert_eq!(mask("+86(138)12345678"), "+86(138****5678");
    }

    #[test]
    fn full_width_at_sign() {
        let masked = mask("邮箱zhang.san＠example.com谢谢");
        assert_eq!(masked, "邮箱z***＠example.com谢谢");
        assert_eq!(mask(&masked), masked);
        assert!(!contains_pii(&masked));
    }

    #[test]
    fn nothing_found_borrows() {
        assert!(matches!(mask(""), Cow::Borrowed("")));
        assert!(matches!(mask("你好，我想查询一下物流"), Cow::Borrowed(_)));
        assert!(find("").is_empty());
    }

    #[test]
    fn spans_are_sorted_and_on_char_boundaries() {
        let text = "ａ１３８１２３４５６７８ 号码：１３８１２３４５６７８，x@y.org 13912345678";
        let spans = find(text);
        assert_eq!(spans.len(), 3);
        for w in spans.windows(2) {
            assert!(w[0].end <= w[1].start);
        }
        for s in &spans {
            assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        }
    }
}
