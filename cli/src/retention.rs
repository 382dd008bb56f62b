//! `switchboard retention`: deletes what ClickHouse holds longer than its retention, the way
//! ClickHouse 18.16 allows (it has no table TTL): one `ALTER TABLE … DELETE WHERE` mutation per
//! table, issued only when old rows exist, and waited for until ClickHouse reports it done.
//!
//! | table | time column | default | setting |
//! |---|---|---|---|
//! | `events` | `occurred_at` (the event's time) | 90 days | `--events-days`, `SWITCHBOARD_RETENTION_EVENTS_DAYS` |
//! | `sessions` | `inserted_at` (when the state was saved) | 30 days | `--sessions-days`, `SWITCHBOARD_RETENTION_SESSIONS_DAYS` |
//!
//! It is a command for a scheduler (a Kubernetes CronJob, cron) rather than a task inside the
//! topology: a topology runs as several processes and would issue every delete several times;
//! a mutation rewrites the parts it touches, which belongs at a quiet hour; and a failed delete
//! must neither stop nor be hidden in a dataflow that is fail-stop. A mutation that is still
//! running when the wait ends goes on inside ClickHouse (`system.mutations`); the command then
//! exits 1 and the next run finds fewer rows.

use serde::Serialize;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard_schemas::settings::ClickHouseSettings;
use switchboard_sinks::clickhouse::ClickHouseSink;

/// The variable that sets the days `events` rows are kept.
pub const EVENTS_DAYS_ENV: &str = "SWITCHBOARD_RETENTION_EVENTS_DAYS";
/// The variable that sets the days saved `sessions` rows are kept.
pub const SESSIONS_DAYS_ENV: &str = "SWITCHBOARD_RETENTION_SESSIONS_DAYS";
/// Days `events` rows are kept by default.
pub const DEFAULT_EVENTS_DAYS: u32 = 90;
/// Days `sessions` rows are kept by default.
pub const DEFAULT_SESSIONS_DAYS: u32 = 30;
/// The longest retention accepted, in days (100 years).
pub const MAX_DAYS: u32 = 36_500;

/// What a retention run fails with.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// A retention outside 1..=[`MAX_DAYS`] days (bad usage: exit 2).
    #[error("{what}: {days} days is outside 1..={MAX_DAYS}")]
    BadDays {
        /// Which setting.
        what: &'static str,
        /// The value given.
        days: u32,
    },
    /// ClickHouse refused a query or could not be reached.
    #[error("ClickHouse at {url} ({database}.{table}): {source}")]
    ClickHouse {
        /// The server.
        url: String,
        /// The database.
        database: String,
        /// The table being trimmed.
        table: &'static str,
        /// The client's error.
        source: clickhouse::error::Error,
    },
    /// The delete was issued but had not finished when the wait ended.
    #[error(
        "the delete on {database}.{table} was still running after {waited_s} s; ClickHouse goes on with it \
         (SELECT * FROM system.mutations WHERE table = '{table}' AND is_done = 0)"
    )]
    NotFinished {
        /// The database.
        database: String,
        /// The table.
        table: &'static str,
        /// How long the command waited.
        waited_s: u64,
    },
}

/// How long each table keeps its rows, and how long to wait for a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Days `events` rows are kept (by `occurred_at`).
    pub events_days: u32,
    /// Days `sessions` rows are kept (by `inserted_at`).
    pub sessions_days: u32,
    /// Longest wait for ClickHouse to finish a delete.
    pub wait: Duration,
    /// Count what would be deleted, delete nothing.
    pub dry_run: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { events_days: DEFAULT_EVENTS_DAYS, sessions_days: DEFAULT_SESSIONS_DAYS, wait: Duration::from_secs(600), dry_run: false }
    }
}

/// What happened to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableOutcome {
    /// The table.
    pub table: &'static str,
    /// The retention applied, in days.
    pub days: u32,
    /// Rows older than this (seconds since the epoch) were deleted.
    pub cutoff: u32,
    /// Rows older than the cutoff when the run began (physical rows: duplicates not yet merged
    /// away count separately).
    pub rows: u64,
    /// Whether a delete was issued (none when there was nothing to delete, or on a dry run).
    pub deleted: bool,
}

/// One table's retention rule.
struct Rule {
    table: &'static str,
    column: &'static str,
    days: u32,
}

/// Applies `policy` to the `events` and `sessions` tables of `settings`' database, with `now`
/// as the current time; the outcome per table.
pub async fn apply(settings: &ClickHouseSettings, policy: &Policy, now: SystemTime) -> Result<Vec<TableOutcome>, RetentionError> {
    for (what, days) in [("events retention", policy.events_days), ("sessions retention", policy.sessions_days)] {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(RetentionError::BadDays { what, days });
        }
    }
    let client = ClickHouseSink::new(settings).client().clone();
    let now_s = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let rules = [
        Rule { table: "events", column: "occurred_at", days: policy.events_days },
        Rule { table: "sessions", column: "inserted_at", days: policy.sessions_days },
    ];
    let mut outcomes = Vec::new();
    for rule in rules {
        let error = |source| RetentionError::ClickHouse {
            url: settings.url.clone(),
            database: settings.database.clone(),
            table: rule.table,
            source,
        };
        // DateTime is seconds in a UInt32; a cutoff before 1970 deletes nothing.
        let cutoff = u32::try_from(now_s.saturating_sub(u64::from(rule.days) * 86_400)).unwrap_or(u32::MAX);
        // Table and column names are constants of this file; the cutoff is a bound parameter.
        let condition = format!("{} < toDateTime(?)", rule.column);
        let rows: u64 = client
            .query(&format!("SELECT count() FROM {} WHERE {condition}", rule.table))
            .bind(cutoff)
            .fetch_one()
            .await
            .map_err(error)?;
        let delete = rows > 0 && !policy.dry_run;
        if delete {
            client
                .query(&format!("ALTER TABLE {} DELETE WHERE {condition}", rule.table))
                .bind(cutoff)
                .execute()
                .await
                .map_err(error)?;
            wait_for_mutations(&client, &settings.database, rule.table, policy.wait).await.map_err(|e| match e {
                Waited::Error(source) => error(source),
                Waited::TimedOut => RetentionError::NotFinished {
                    database: settings.database.clone(),
                    table: rule.table,
                    waited_s: policy.wait.as_secs(),
                },
            })?;
        }
        tracing::info!(table = rule.table, days = rule.days, cutoff, rows, deleted = delete, "retention");
        outcomes.push(TableOutcome { table: rule.table, days: rule.days, cutoff, rows, deleted: delete });
    }
    Ok(outcomes)
}

enum Waited {
    Error(clickhouse::error::Error),
    TimedOut,
}

/// Waits until `table` has no unfinished mutation (ours included), polling every 200 ms.
async fn wait_for_mutations(client: &clickhouse::Client, database: &str, table: &str, wait: Duration) -> Result<(), Waited> {
    let deadline = Instant::now() + wait;
    loop {
        let running: u64 = client
            .query("SELECT count() FROM system.mutations WHERE database = ? AND table = ? AND is_done = 0")
            .bind(database)
            .bind(table)
            .fetch_one()
            .await
            .map_err(Waited::Error)?;
        if running == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Waited::TimedOut);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retentions_outside_the_range_are_refused_before_any_query() {
        // An unreachable server: the check must come first.
        let settings = ClickHouseSettings {
            url: "http://127.0.0.1:1".into(),
            database: "switchboard".into(),
            user: "default".into(),
            password: None,
        };
        for policy in [Policy { events_days: 0, ..Policy::default() }, Policy { sessions_days: MAX_DAYS + 1, ..Policy::default() }] {
            let e = apply(&settings, &policy, SystemTime::now()).await.expect_err("refused");
            assert!(matches!(e, RetentionError::BadDays { .. }), "{e}");
        }
    }
}
