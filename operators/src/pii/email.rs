//! Email addresses.

use std::sync::LazyLock;

use regex::Regex;

/// Email addresses, with an ASCII or a full-width at sign (`＠`, as Chinese input methods type
/// it). The local part may contain `*` after its first character so that an already masked
/// address (`z***@example.com`) is still recognised as an email (and then skipped).
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[A-Za-z0-9._%+\-][A-Za-z0-9._%+\-*]*[@＠][A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    )
    .expect("the email regex is valid")
});

/// One email regex match, possibly shortened so that it does not overlap the next one.
pub(super) struct EmailMatch {
    /// Byte offset of the first byte.
    pub(super) start: usize,
    /// Byte offset one past the last byte.
    pub(super) end: usize,
    /// The local part already has the masked shape `c***`; it is opaque but not reported.
    pub(super) already_masked: bool,
}

/// All email addresses in `text`. After each match the search resumes right after its `@`, so
/// that in a chain like `ab@cd.ef@gh.com` both local parts are found (and both get masked; the
/// first span is cut short where the second begins). Without this, masking the first address
/// would expose the second one to the next pass and masking would not be idempotent.
pub(super) fn email_matches(text: &str) -> Vec<EmailMatch> {
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
pub(super) const AT_SIGNS: [char; 2] = ['@', '\u{FF20}'];
