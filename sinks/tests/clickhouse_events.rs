//! Events go into the real ClickHouse (started by deploy/dev/up.sh) with the `clickhouse`
//! crate and come back intact; writing the same events twice leaves one row each under FINAL.

use switchboard_schemas::settings::ClickHouseSettings;
use switchboard_schemas::*;
use switchboard_sinks::clickhouse::{ClickHouseSink, EventRow};

fn sample(dialogue_id: &str) -> Vec<Event> {
    let said = Event::new(
        dialogue_id,
        1_764_000_000_123,
        EventBody::UserSaid(UserSaid {
            client_msg_id: "m-1".into(),
            user_id: "u-1".into(),
            locale: Locale::ZhCn,
            text: "我要退货".into(),
        }),
    );
    let answer = Event::caused_by(
        &said,
        "answer",
        1_764_000_000_456,
        EventBody::AnswerGenerated(AnswerGenerated {
            in_reply_to: said.event_id,
            client_msg_id: "m-1".into(),
            text: "请提供订单号".into(),
            intent: "return_goods".into(),
            confidence: 0.93,
            latency_ms: 333,
        }),
    );
    vec![said, answer]
}

#[tokio::test]
async fn events_round_trip_and_duplicates_collapse_under_final() {
    let settings = ClickHouseSettings::from_env().expect("settings");
    let sink = ClickHouseSink::new(&settings);
    sink.ping().await.unwrap_or_else(|e| panic!("{e} (is ClickHouse up? deploy/dev/up.sh)"));

    let dialogue_id = format!("test-ch-{}", EventId::new_v7());
    let events = sample(&dialogue_id);
    sink.write(&events).await.expect("first insert");
    sink.write(&events).await.expect("duplicate insert");

    let rows: Vec<EventRow> = sink
        .client()
        .query("SELECT ?fields FROM events FINAL WHERE dialogue_id = ? ORDER BY occurred_at_ms")
        .bind(&dialogue_id)
        .fetch_all()
        .await
        .expect("select");
    let want: Vec<EventRow> = events.iter().map(EventRow::from_event).collect();
    assert_eq!(rows, want);
    assert_eq!(rows[1].kind, "answer_generated");
    assert_eq!(rows[1].in_reply_to, events[0].event_id.0);
    assert_eq!(rows[0].text, "我要退货");

}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    let settings = ClickHouseSettings {
        url: "http://127.0.0.1:1".into(),
        database: "switchboard".into(),
        user: "default".into(),
        password: None,
    };
    let err = ClickHouseSink::new(&settings).write(&sample("d-unreachable")).await.unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

#[tokio::test]
async fn a_database_created_twice_has_the_agent_column_once_and_agent_events_fill_it() {
    let settings = ClickHouseSettings::from_env().expect("settings");
    let database = format!("sbtest_agent_col_{}", &EventId::new_v7().to_string().replace('-', "")[..16]);
    let admin = ClickHouseSink::new(&settings);
    admin.ping().await.unwrap_or_else(|e| panic!("{e} (is ClickHouse up? deploy/dev/up.sh)"));
    admin.create_database(&database).await.expect("created");
    admin.create_database(&database).await.expect("created again: 18.16 has no ADD COLUMN IF NOT EXISTS, the sink checks");
    let sink = ClickHouseSink::new(&ClickHouseSettings { database: database.clone(), ..settings.clone() });
    let claim = Event::new("d-agent-col", 1_764_000_000_000, EventBody::AgentClaim(AgentClaim { agent: "li.na".into() }));
    sink.write(std::slice::from_ref(&claim)).await.expect("insert");
    let agents: Vec<String> = sink
        .client()
        .query("SELECT agent FROM events FINAL WHERE dialogue_id = 'd-agent-col'")
        .fetch_all()
        .await
        .expect("select");
    admin.client().query(&format!("DROP DATABASE {database}")).execute().await.expect("drop");
    assert_eq!(agents, vec!["li.na".to_string()]);
}
