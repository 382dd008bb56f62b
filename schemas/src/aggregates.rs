//! The live per-minute counts the topology keeps and serves as JSON at `GET /aggregates` on its
//! metrics listener, and that the gateway's console fetches, sums and shows (`/console/api/live`).
//!
//! Both sides use [`AggregateRow`], so the wire shape is written once:
//!
//! ```
//! use switchboard_schemas::aggregates::AggregateRow;
//!
//! let row = AggregateRow { minute: 28_333_333, metric: "intent".into(), label: "refund".into(), count: 4 };
//! let json = serde_json::to_string(&row).unwrap();
//! assert_eq!(json, r#"{"minute":28333333,"metric":"intent","label":"refund","count":4}"#);
//! assert_eq!(serde_json::from_str::<AggregateRow>(&json).unwrap(), row);
//! ```

use serde::{Deserialize, Serialize};

/// One counted key of one minute: a row of the topology's `GET /aggregates` JSON array (and of
/// the console's live view, where rows of several processes are summed by key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateRow {
    /// Minute since the Unix epoch (UTC).
    pub minute: i64,
    /// `turns`, `intent`, `handoff` or `dead_letter`.
    pub metric: String,
    /// The intent or handoff reason; empty for `turns` and `dead_letter`.
    pub label: String,
    /// Events counted.
    pub count: i64,
}
