//! The typed errors of decoding.

use thiserror::Error;

/// Why a byte string is not a valid event. Every variant says what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The bytes are not UTF-8.
    #[error("invalid UTF-8 at byte {position}")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        position: usize,
    },
    /// The record is larger than [`crate::MAX_EVENT_BYTES`].
    #[error("event is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Size of the record.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON, or not a JSON object.
    #[error("malformed JSON at line {line} column {column}: {message}")]
    Malformed {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// No `kind` field.
    #[error("missing field `kind`")]
    MissingKind,
    /// A `kind` this build does not know.
    #[error("unknown event kind `{0}`")]
    UnknownKind(String),
    /// A `schema_version` newer than this build understands.
    #[error("unsupported schema_version {found} (this build reads up to {supported})")]
    UnsupportedVersion {
        /// The version found.
        found: u64,
        /// The newest version this build reads.
        supported: u16,
    },
    /// A required field is absent.
    #[error("missing field `{field}` in {kind}")]
    MissingField {
        /// The event kind.
        kind: String,
        /// The field name.
        field: String,
    },
    /// A field has the wrong type or an invalid value.
    #[error("invalid field in {kind}: {message}")]
    InvalidField {
        /// The event kind.
        kind: String,
        /// What was wrong.
        message: String,
    },
    /// A text field is longer than [`crate::MAX_TEXT_CHARS`].
    #[error("text field of {kind} is {chars} characters, more than the limit of {limit}")]
    TextTooLong {
        /// The event kind.
        kind: String,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        limit: usize,
    },
}
