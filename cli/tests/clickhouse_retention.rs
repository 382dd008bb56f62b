//! `switchboard retention` against the real ClickHouse (18.16 in dev: no table TTL, so a
//! delete mutation): on a fresh database with events and saved sessions on both sides of their
//! retention, a dry run counts and deletes nothing, a run leaves exactly the rows inside the
//! retention, a second run finds nothing to do, environment overrides apply, and bad usage and
//! an unreachable server give the contract's exit statuses (2 and 1) with one line on stderr.

mod common;

use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};
use switchboard_schemas::settings::ClickHouseSettings;
use switchboard_schemas::*;

const DAY_MS: i64 = 86_400_000;

/// A `sessions` row with its save time (the table's default is now()).
#[derive(Debug, serde::Serialize, clickhouse::Row)]
struct SessionAt {
    dialogue_id: String,
    state: String,
    closed: u8,
    version: u64,
    inserted_at: u32,
}

fn retention(database: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.arg("retention").args(args).env("SWITCHBOARD_CLICKHOUSE_DATABASE", database).env("SWITCHBOARD_LOG", "warn");
    for name in ["SWITCHBOARD_RETENTION_EVENTS_DAYS", "SWITCHBOARD_RETENTION_SESSIONS_DAYS"] {
        command.env_remove(name);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run switchboard retention")
}

fn report(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "retention failed ({:?}): {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not one JSON line ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// (rows, deleted) of `table` in a report.
fn table(report: &serde_json::Value, name: &str) -> (u64, bool) {
    let t = report["tables"].as_array().expect("tables").iter().find(|t| t["table"] == name).expect("table in report");
    (t["rows"].as_u64().expect("rows"), t["deleted"].as_bool().expect("deleted"))
}

async fn dialogues(settings: &ClickHouseSettings, database: &str, table: &str) -> Vec<String> {
    common::clickhouse_on(settings, database)
        .client()
        .query(&format!("SELECT DISTINCT dialogue_id FROM {table} ORDER BY dialogue_id"))
        .fetch_all::<String>()
        .await
        .expect("read back")
}

#[tokio::test]
async fn retention_deletes_only_rows_older_than_their_retention() {
    let settings = ClickHouseSettings::from_env().expect("clickhouse settings");
    let database = format!("sbtest_retention_{}", &common::run_id()[..16]);
    common::create_database(&settings, &database).await;
    let sink = common::clickhouse_on(&settings, &database);
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64;

    // Events (kept 90 days by default) at 200, 91, 89 and 0 days of age.
    let said = |dialogue: &str, age_days: i64| {
        Event::new(
            dialogue,
            now_ms - age_days * DAY_MS,
            EventBody::UserSaid(UserSaid { client_msg_id: "m".into(), user_id: "u".into(), locale: Locale::ZhCn, text: "我要退货".into() }),
        )
    };
    let events = [said("e-200d", 200), said("e-091d", 91), said("e-089d", 89), said("e-000d", 0)];
    sink.write(&events).await.expect("insert events");
    // Saved sessions (kept 30 days) saved 31 and 29 days ago and now.
    let mut insert = sink.client().insert::<SessionAt>("sessions").await.expect("insert sessions");
    for (dialogue, age_days) in [("s-031d", 31), ("s-029d", 29), ("s-000d", 0)] {
        let at = now_ms - age_days * DAY_MS;
        let row = SessionAt { dialogue_id: dialogue.into(), state: "{}".into(), closed: 0, version: at as u64, inserted_at: (at / 1000) as u32 };
        insert.write(&row).await.expect("session row");
    }
    insert.end().await.expect("sessions inserted");

    // A dry run counts and deletes nothing.
    let dry = report(&retention(&database, &["--dry-run"], &[]));
    assert_eq!((table(&dry, "events"), table(&dry, "sessions")), ((2, false), (1, false)), "{dry}");
    assert_eq!(dialogues(&settings, &database, "events").await.len(), 4);

    // The defaults: events 90 days, sessions 30 days.
    let run = report(&retention(&database, &[], &[]));
    assert_eq!((table(&run, "events"), table(&run, "sessions")), ((2, true), (1, true)), "{run}");
    assert_eq!(dialogues(&settings, &database, "events").await, ["e-000d", "e-089d"]);
    assert_eq!(dialogues(&settings, &database, "sessions").await, ["s-000d", "s-029d"]);

    // Nothing left to do: no delete is issued.
    let again = report(&retention(&database, &[], &[]));
    assert_eq!((table(&again, "events"), table(&again, "sessions")), ((0, false), (0, false)), "{again}");

    // The environment overrides the defaults; a flag overrides the environment.
    let env = [("SWITCHBOARD_RETENTION_EVENTS_DAYS", "60"), ("SWITCHBOARD_RETENTION_SESSIONS_DAYS", "10")];
    let overridden = report(&retention(&database, &["--sessions-days", "40"], &env));
    assert_eq!((table(&overridden, "events"), table(&overridden, "sessions")), ((1, true), (0, false)), "{overridden}");
    assert_eq!(dialogues(&settings, &database, "events").await, ["e-000d"]);
    assert_eq!(dialogues(&settings, &database, "sessions").await, ["s-000d", "s-029d"]);

    // Bad usage: exit 2, one line, nothing deleted.
    for (args, env) in [
        (vec!["--events-days", "0"], vec![]),
        (vec!["--sessions-days", "ninety"], vec![]),
        (vec![], vec![("SWITCHBOARD_RETENTION_EVENTS_DAYS", "-1")]),
        (vec!["--events-days", "36501"], vec![]),
    ] {
        let out = retention(&database, &args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: printed a report");
    }
    assert_eq!(dialogues(&settings, &database, "events").await, ["e-000d"]);

    // ClickHouse unreachable: exit 1 and one line that names it.
    let out = retention(&database, &[], &[("SWITCHBOARD_CLICKHOUSE_URL", "http://127.0.0.1:1")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("switchboard: ") && stderr.contains("127.0.0.1:1"), "{stderr}");

    common::drop_database(&settings, &database).await;
}
