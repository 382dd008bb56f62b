//! The Kafka topics of the contract.

/// Gateway → topology: every accepted user turn (key = dialogue_id).
pub const USER_SAID: &str = "user.said";
/// Topology → gateways: answers and handoffs (key = dialogue_id).
pub const BOT_SAID: &str = "bot.said";
/// Records that could not be decoded or processed, with the reason.
pub const DEAD_LETTER: &str = "switchboard.dead-letter";
/// Default partitions per broker node.
pub const PARTITIONS_PER_NODE: i32 = 8;
/// Every topic the system needs.
pub const ALL: [&str; 3] = [USER_SAID, BOT_SAID, DEAD_LETTER];
