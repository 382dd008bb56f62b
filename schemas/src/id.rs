//! 16-byte event identifiers (UUIDv7: time-ordered, unique across processes).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The identity of one event. Sinks deduplicate on it, so producing the same event twice is
/// harmless. New ids are UUIDv7; ids derived from an input record are UUIDv8-style hashes so
/// that re-processing the same input yields the same id (see [`EventId::derived`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub uuid::Uuid);

/// The UUID namespace of say ids ([`EventId::for_say`]); never changes.
const SAY_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5b1c_0a2d_7e4f_4c38_9a61_3d2e_8f70_b5c4);

impl EventId {
    /// A fresh time-ordered id (UUIDv7).
    pub fn new_v7() -> Self {
        EventId(uuid::Uuid::now_v7())
    }

    /// A deterministic id derived from a parent id and a role name, used when one input event
    /// produces output events: replaying the input produces the same ids, which makes every sink
    /// idempotent. The result keeps the parent's 48-bit millisecond timestamp, so it sorts
    /// by time like a UUIDv7.
    pub fn derived(parent: EventId, role: &str) -> Self {
        let parent_bytes = parent.0.as_bytes();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut low: u64 = 0x8422_2325_cbf2_9ce4;
        for b in parent_bytes.iter().chain(role.as_bytes()) {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
            low = (low ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
        }
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&parent_bytes[..6]);
        bytes[6..14].copy_from_slice(&hash.to_be_bytes());
        bytes[14..].copy_from_slice(&low.to_be_bytes()[..2]);
        // version 8 (custom), RFC 4122 variant
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        EventId(uuid::Uuid::from_bytes(bytes))
    }

    /// The id of a user's say: a name-based UUID (v5, SHA-1) of the dialogue and the client's
    /// message id, so the same say sent again — a retry after a reconnect, through any gateway —
    /// is the same event, and the session applies it once.
    pub fn for_say(dialogue_id: &str, client_msg_id: &str) -> Self {
        let mut name = Vec::with_capacity(dialogue_id.len() + client_msg_id.len() + 1);
        name.extend_from_slice(dialogue_id.as_bytes());
        name.push(0);
        name.extend_from_slice(client_msg_id.as_bytes());
        EventId(uuid::Uuid::new_v5(&SAY_NAMESPACE, &name))
    }

    /// The id with these 16 raw bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        EventId(uuid::Uuid::from_bytes(bytes))
    }

    /// The 16 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

impl std::str::FromStr for EventId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(EventId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_v7_and_distinct() {
        let a = EventId::new_v7();
        let b = EventId::new_v7();
        assert_eq!(a.0.get_version_num(), 7);
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), 16);
    }

    #[test]
    fn derived_ids_are_stable_and_role_specific() {
        let parent = EventId::new_v7();
        assert_eq!(EventId::derived(parent, "answer"), EventId::derived(parent, "answer"));
        assert_ne!(EventId::derived(parent, "answer"), EventId::derived(parent, "intent"));
        assert_eq!(&EventId::derived(parent, "x").as_bytes()[..6], &parent.as_bytes()[..6]);
    }
}
