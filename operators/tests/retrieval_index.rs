//! Exact index: agrees with brute force, is deterministic, breaks ties by entry then question,
//! and works as a trait object.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_operators::retrieval::{ExactIndex, ExactIndexBuilder, Filter, Hit, VectorIndex};
use switchboard_schemas::Locale;

fn random_unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

struct Row {
    locale: Locale,
    intent: String,
    entry: usize,
    question: usize,
    vector: Vec<f32>,
}

fn corpus(seed: u64, entries: usize, dim: usize) -> Vec<Row> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rows = Vec::new();
    for entry in 0..entries {
        let locale = if entry % 3 == 0 {
            Locale::En
        } else {
            Locale::ZhCn
        };
        let intent = format!("intent_{}", entry % 7);
        for question in 0..(1 + entry % 4) {
            rows.push(Row {
                locale,
                intent: intent.clone(),
                entry,
                question,
                vector: random_unit(&mut rng, dim),
            });
        }
    }
    rows
}

fn build<'a>(rows: impl IntoIterator<Item = &'a Row>) -> ExactIndex {
    let mut b = ExactIndexBuilder::new();
    for r in rows {
        b.push(r.locale, &r.intent, r.entry, r.question, &r.vector)
            .expect("push");
    }
    b.build().expect("build")
}

/// Brute force: best question per entry in f64, sorted by score then entry.
fn brute_force(rows: &[Row], query: &[f32], filter: &Filter, k: usize) -> Vec<(usize, usize, f64)> {
    let mut best: std::collections::BTreeMap<usize, (usize, f64)> = Default::default();
    for r in rows.iter().filter(|r| {
        r.locale == filter.locale && filter.intent.as_ref().is_none_or(|i| *i == r.intent)
    }) {
        let s: f64 = r
            .vector
            .iter()
            .zip(query)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        let e = best.entry(r.entry).or_insert((r.question, s));
        if s > e.1 {
            *e = (r.question, s);
        }
    }
    let mut v: Vec<(usize, usize, f64)> = best.into_iter().map(|(e, (q, s))| (e, q, s)).collect();
    v.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    v.truncate(k);
    v
}

#[test]
fn agrees_with_brute_force() {
    let dim = 48;
    let rows = corpus(7, 300, dim);
    let index = build(&rows);
    assert_eq!(index.len(), rows.len());
    let mut rng = StdRng::seed_from_u64(99);
    for trial in 0..20 {
        let query = random_unit(&mut rng, dim);
        let locale = if trial % 2 == 0 {
            Locale::ZhCn
        } else {
            Locale::En
        };
        let filter = if trial % 4 < 2 {
            Filter::locale(locale)
        } else {
            Filter::intent(locale, format!("intent_{}", trial % 7))
        };
        let got = index.search(&query, &filter, 10);
        let want = brute_force(&rows, &query, &filter, 10);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                (g.entry_index, g.question_index),
                (w.0, w.1),
                "trial {trial}"
            );
            assert!((g.score as f64 - w.2).abs() < 1e-5);
        }
    }
}

#[test]
fn is_deterministic_whatever_the_insertion_order() {
    let dim = 33; // not a multiple of the accumulator width
    let rows = corpus(11, 200, dim);
    let forward = build(&rows);
    let backward = build(rows.iter().rev());
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..10 {
        let query = random_unit(&mut rng, dim);
        for filter in [
            Filter::locale(Locale::ZhCn),
            Filter::intent(Locale::En, "intent_3"),
        ] {
            let a = forward.search(&query, &filter, 25);
            let b = backward.search(&query, &filter, 25);
            let c = forward.search(&query, &filter, 25);
            let bits = |hits: &[Hit]| {
                hits.iter()
                    .map(|h| (h.entry_index, h.question_index, h.score.to_bits()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&a), bits(&b));
            assert_eq!(bits(&a), bits(&c));
        }
    }
}

#[test]
fn ties_break_by_entry_then_question() {
    let v = [0.6f32, 0.8];
    let mut b = ExactIndexBuilder::new();
    // Pushed out of order on purpose; all rows have the same vector, so all scores tie.
    for (entry, question) in [(5, 1), (2, 3), (5, 0), (9, 0), (2, 1), (2, 2)] {
        b.push(Locale::ZhCn, "same", entry, question, &v).unwrap();
    }
    b.push(Locale::ZhCn, "other", 1, 4, &v).unwrap();
    let index = b.build().unwrap();
    let hits = index.search(&v, &Filter::locale(Locale::ZhCn), 10);
    let order: Vec<(usize, usize)> = hits
        .iter()
        .map(|h| (h.entry_index, h.question_index))
        .collect();
    assert_eq!(order, [(1, 4), (2, 1), (5, 0), (9, 0)]);
    assert!(hits.windows(2).all(|w| w[0].score == w[1].score));
    // k cuts after the tie order.
    let top2: Vec<usize> = index
        .search(&v, &Filter::locale(Locale::ZhCn), 2)
        .iter()
        .map(|h| h.entry_index)
        .collect();
    assert_eq!(top2, [1, 2]);
    let same: Vec<usize> = index
        .search(&v, &Filter::intent(Locale::ZhCn, "same"), 10)
        .iter()
        .map(|h| h.entry_index)
        .collect();
    assert_eq!(same, [2, 5, 9]);
}

#[test]
fn works_behind_a_trait_object() {
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}
    assert_send_sync::<dyn VectorIndex>();
    let rows = corpus(3, 20, 8);
    let index: Box<dyn VectorIndex> = Box::new(build(&rows));
    assert!(!index.is_empty());
    let shared = std::sync::Arc::new(index);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                shared.search(
                    &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                    &Filter::locale(Locale::ZhCn),
                    3,
                )
            })
        })
        .collect();
    let results: Vec<Vec<Hit>> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0].len(), 3);
}
