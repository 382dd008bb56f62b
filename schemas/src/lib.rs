//! Switchboard's event vocabulary: the envelope every Kafka record and ClickHouse row carries,
//! every event kind the pipeline emits, and the strict JSON codec that turns bytes into events.
//!
//! Decoding never panics: malformed JSON, an unknown `kind`, a missing field, a wrong type, an
//! oversize text, an unsupported `schema_version` or invalid UTF-8 each come back as a typed
//! [`DecodeError`].
//!
//! ```
//! use switchboard_schemas::{Event, EventBody, UserSaid, Locale, decode, encode};
//!
//! let said = Event::new("d-1", 1_700_000_000_000, EventBody::UserSaid(UserSaid {
//!     client_msg_id: "m-1".into(),
//!     user_id: "u-1".into(),
//!     locale: Locale::ZhCn,
//!     text: "我要退货".into(),
//! }));
//! let bytes = encode(&said);
//! assert_eq!(decode(&bytes).unwrap(), said);
//! assert!(decode(br#"{"kind":"nope"}"#).is_err());
//! ```

#![deny(missing_docs)]

pub mod aggregates;
pub mod clarify;
mod codec;
mod error;
mod event;
mod id;
pub mod ownership;
mod record;
pub mod session;
pub mod settings;
pub mod topics;

pub use codec::{decode, decode_str, encode, MAX_EVENT_BYTES, MAX_TEXT_CHARS};
pub use error::DecodeError;
pub use event::*;
pub use id::EventId;
pub use ownership::{
    AgentAction, AgentActionRefused, AgentClaim, AgentClose, AgentMessage, AgentReturn, AgentSaid, Owner, OwnershipChanged,
    OwnershipReason, RefusalReason, TurnQueued, MAX_AGENT_CHARS,
};
pub use record::SourceRecord;
