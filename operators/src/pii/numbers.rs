//! Digit runs: mobile numbers, resident ID numbers and bank card numbers, grouped or compact,
//! ASCII or full-width, bounded by non-digits.

use super::checksum::{id_checksum_valid, luhn_valid};
use super::email::AT_SIGNS;
use super::span::{PiiKind, PiiSpan};

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

/// The value of an ASCII or full-width digit.
pub(super) fn digit_value(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '\u{FF10}'..='\u{FF19}' => u8::try_from(u32::from(c) - 0xFF10).ok(),
        _ => None,
    }
}

/// The check character `X` of an ID number, ASCII or full-width, either case.
pub(super) fn is_check_x(c: char) -> bool {
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
/// looks like the output of [`mask`](super::mask), so that the digits next to it are the kept part of a
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
pub(super) fn scan_numbers(
    text: &str,
    chars: &[(usize, char)],
    blocked: &[bool],
    out: &mut Vec<PiiSpan>,
) {
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
