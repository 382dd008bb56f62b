//! Turns per second through the whole graph in one process, with the real models and knowledge
//! base: decode → PII masking → intent + retrieval (batched per epoch) → session → render, on
//! runs of 256 turns of 64 dialogues in epochs of 32 turns (what one poll of a live run hands
//! the graph; each epoch is understood in one batch), for a Zipf mix of utterances (mostly cache hits after
//! the first batch, as in real traffic) and for all-unique utterances (every turn embedded).
//!
//! Needs the demo models (`deploy/dev/prepare.sh`; `SWITCHBOARD_STATE` and `SWITCHBOARD_MODELS`
//! as in `deploy/dev/test.sh`). Run with `cargo bench --workspace --bench turns`.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use switchboard_cli::loadgen::{Mix, Texts};
use switchboard_schemas::{encode, Event, EventBody, Locale, UserSaid};
use switchboard_sources::SourceRecord;
use switchboard_cli::commands::build_understanding;
use switchboard_cli::config::TopologyConfig;
use switchboard_topology::runner::recorded::run_recording;
use switchboard_topology::{Clock, GraphConfig};

const TURNS: usize = 256;
const DIALOGUES: usize = 64;
/// Turns per epoch: they share a record timestamp, as the records of one poll share an epoch.
const EPOCH_TURNS: usize = 32;

/// Says in separate runs never repeat a unique text.
static RUN: AtomicU64 = AtomicU64::new(0);

fn recording(mix: Mix) -> Vec<SourceRecord> {
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let mut texts = Texts::new(mix, Locale::ZhCn, &format!("bench{run}"));
    (0..TURNS)
        .map(|i| {
            let at = 1_764_000_000_000 + (i / EPOCH_TURNS) as i64 * 10;
            let event = Event::new(
                format!("bench-{:03}", i % DIALOGUES),
                at,
                EventBody::UserSaid(UserSaid {
                    client_msg_id: format!("m{run}-{i}"),
                    user_id: "u".into(),
                    locale: Locale::ZhCn,
                    text: texts.next(i as u64),
                }),
            );
            SourceRecord {
                topic: "user.said".into(),
                partition: (i % DIALOGUES % 8) as i32,
                offset: i as i64,
                timestamp_ms: at,
                key: Some(event.dialogue_id.clone()),
                value: encode(&event),
            }
        })
        .collect()
}

fn turns(c: &mut Criterion) {
    let config = TopologyConfig::default();
    let understand = build_understanding(&config).expect("demo models (run deploy/dev/prepare.sh)");
    let graph = GraphConfig::new(understand, config.session(), Clock::Virtual);
    let mut group = c.benchmark_group("graph_turns");
    group.throughput(Throughput::Elements(TURNS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for mix in [Mix::Zipf, Mix::Unique] {
        for workers in [1usize, 2] {
            group.bench_with_input(BenchmarkId::new(mix.to_string(), format!("{workers}w")), &workers, |b, &workers| {
                b.iter_batched(
                    || recording(mix),
                    |records| run_recording(records, workers, graph.clone()).expect("graph run"),
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, turns);
criterion_main!(benches);
