//! What [`find`](super::find) reports: the kind and place of one piece of PII.

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
