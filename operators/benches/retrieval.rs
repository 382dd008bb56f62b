//! `ExactIndex::search` latency over random L2-normalised 512-d vectors: 1k, 10k and 100k
//! vectors spread over 40 intents of one locale, searched for the top 5 entries with an intent
//! filter (one intent of 40) and without (the whole locale).
//!
//! Run with `cargo bench -p switchboard-operators --bench retrieval`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_operators::retrieval::{ExactIndex, ExactIndexBuilder, Filter, VectorIndex};
use switchboard_schemas::Locale;

const DIM: usize = 512;
const INTENTS: usize = 40;
const QUESTIONS_PER_ENTRY: usize = 4;
const K: usize = 5;

fn random_unit(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn index_of(vectors: usize, rng: &mut StdRng) -> ExactIndex {
    let mut builder = ExactIndexBuilder::new();
    for row in 0..vectors {
        let entry = row / QUESTIONS_PER_ENTRY;
        let intent = format!("intent_{:02}", entry % INTENTS);
        builder
            .push(
                Locale::ZhCn,
                &intent,
                entry,
                row % QUESTIONS_PER_ENTRY,
                &random_unit(rng),
            )
            .expect("push");
    }
    builder.build().expect("build")
}

fn search(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(42);
    let queries: Vec<Vec<f32>> = (0..64).map(|_| random_unit(&mut rng)).collect();
    let mut group = c.benchmark_group("exact_index_search");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for vectors in [1_000usize, 10_000, 100_000] {
        let index = index_of(vectors, &mut rng);
        let filters = [
            (
                "one_intent_of_40",
                Filter::intent(Locale::ZhCn, "intent_07"),
            ),
            ("whole_locale", Filter::locale(Locale::ZhCn)),
        ];
        for (label, filter) in filters {
            let scanned = if filter.intent.is_some() {
                vectors / INTENTS
            } else {
                vectors
            };
            group.throughput(Throughput::Elements(scanned as u64));
            let mut q = 0;
            group.bench_with_input(BenchmarkId::new(label, vectors), &filter, |b, filter| {
                b.iter(|| {
                    q = (q + 1) % queries.len();
                    black_box(index.search(black_box(&queries[q]), filter, K))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
