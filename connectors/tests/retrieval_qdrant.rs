//! The Qdrant vector index (`switchboard_connectors::qdrant`; moved here from the operators'
//! `retrieval::qdrant`).
//!
//! Unit-level tests run without a server: naming, point ids, ranking, settings, and an index
//! whose server is unreachable (searches give no hit, never panic, also inside a Tokio
//! runtime). Integration tests run against the server at `QDRANT_URL` and compare every
//! result with [`ExactIndex`]; without `QDRANT_URL` they print a `skipped:` line and pass.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_connectors::qdrant::{
    collection_name, fetch_limit, locale_slug, point_id, question_of_point, rank_entries,
    ranking_is_final, validate_prefix, validate_version, QdrantError, QdrantIndex, QdrantSettings,
    DEFAULT_COLLECTION_PREFIX,
};
use switchboard_operators::retrieval::snapshot::QuestionRef;
use switchboard_operators::retrieval::{
    ExactIndex, Filter, Hit, KbEntry, Retriever, RetrieverConfig, Snapshot, VectorIndex,
};
use switchboard_schemas::Locale;

const SKIP: &str = "skipped: QDRANT_URL is not set (no Qdrant server can be installed here)";

fn hit(entry_index: usize, question_index: usize, score: f32) -> Hit {
    Hit {
        entry_index,
        question_index,
        score,
    }
}

fn entry(id: &str, locale: Locale, intent: &str, questions: usize) -> KbEntry {
    KbEntry {
        id: id.into(),
        locale,
        intent: intent.into(),
        questions: (0..questions)
            .map(|q| format!("{id} question {q}"))
            .collect(),
        answer: format!("answer {id}"),
        slots: vec![],
    }
}

/// Deterministic pseudo-random values in [-1, 1) (xorshift).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A small two-locale snapshot: zh entries over three intents with 1–4 questions each
/// (dim 16, random vectors plus exact duplicates so that scores tie), en entries (dim 8).
fn small_snapshot() -> Snapshot {
    let mut entries = Vec::new();
    let intents = ["return_goods", "invoice", "shipping"];
    for i in 0..12 {
        entries.push(entry(
            &format!("zh{i}"),
            Locale::ZhCn,
            intents[i % 3],
            1 + i % 4,
        ));
    }
    for i in 0..5 {
        entries.push(entry(
            &format!("en{i}"),
            Locale::En,
            intents[i % 2],
            1 + i % 2,
        ));
    }
    let zh_rows: usize = entries
        .iter()
        .filter(|e| e.locale == Locale::ZhCn)
        .map(|e| e.questions.len())
        .sum();
    let en_rows: usize = entries
        .iter()
        .filter(|e| e.locale == Locale::En)
        .map(|e| e.questions.len())
        .sum();
    let mut zh = noise(7, zh_rows * 16);
    // Rows 3 and 9 (different entries) get row 0's vector: exact ties across entries.
    let first: Vec<f32> = zh[..16].to_vec();
    zh[3 * 16..4 * 16].copy_from_slice(&first);
    zh[9 * 16..10 * 16].copy_from_slice(&first);
    let en = noise(11, en_rows * 8);
    Snapshot::from_vectors(
        entries,
        vec![
            (Locale::ZhCn, "fake-zh".into(), 16, zh),
            (Locale::En, "fake-en".into(), 8, en),
        ],
    )
    .expect("consistent test snapshot")
}

// ---------------------------------------------------------------------------------------------
// Without a server
// ---------------------------------------------------------------------------------------------

#[test]
fn errors_are_thread_safe() {
    fn check<T: Send + Sync + 'static>() {}
    check::<switchboard_operators::Error>();
    check::<QdrantError>();
    check::<QdrantIndex>();
}

#[test]
fn collection_names() {
    assert_eq!(locale_slug(Locale::ZhCn), "zh-cn");
    assert_eq!(locale_slug(Locale::En), "en");
    assert_eq!(
        collection_name("switchboard_kb", "0123abcd", Locale::ZhCn),
        "switchboard_kb_0123abcd_zh-cn"
    );
    assert_eq!(collection_name("kb", "ff", Locale::En), "kb_ff_en");
    let snapshot = small_snapshot();
    let name = collection_name(DEFAULT_COLLECTION_PREFIX, &snapshot.version, Locale::En);
    assert!(name.starts_with("switchboard_kb_") && name.ends_with("_en"));
    assert!(validate_version(&snapshot.version).is_ok());
}

#[test]
fn prefix_and_version_validation() {
    for good in ["kb", "switchboard_kb", "Team-1_kb", &"a".repeat(64)] {
        assert!(validate_prefix(good).is_ok(), "{good}");
    }
    for bad in ["", "a b", "kb/x", "kb.x", "知识库", &"a".repeat(65)] {
        assert!(
            matches!(validate_prefix(bad), Err(QdrantError::BadPrefix(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        validate_version("../etc"),
        Err(QdrantError::BadVersion(_))
    ));
    assert!(validate_version("").is_err());
}

#[test]
fn point_ids_are_row_indices() {
    let snapshot = small_snapshot();
    for block in &snapshot.locales {
        for (row, q) in block.rows.iter().enumerate() {
            let id = point_id(row);
            assert_eq!(id, row as u64);
            assert_eq!(question_of_point(id, &block.rows), Some(*q));
        }
        assert_eq!(
            question_of_point(block.rows.len() as u64, &block.rows),
            None
        );
        assert_eq!(question_of_point(u64::MAX, &block.rows), None);
    }
    let rows = [QuestionRef {
        entry_index: 4,
        question_index: 2,
    }];
    assert_eq!(
        question_of_point(0, &rows),
        Some(QuestionRef {
            entry_index: 4,
            question_index: 2
        })
    );
}

#[test]
fn fetch_limits() {
    assert_eq!(fetch_limit(5, 3), 15);
    assert_eq!(fetch_limit(5, 0), 5);
    assert_eq!(fetch_limit(0, 3), 0);
    assert_eq!(fetch_limit(usize::MAX, 2), usize::MAX);
}

#[test]
fn rank_entries_dedups_and_breaks_ties() {
    let hits = vec![
        hit(3, 1, 0.5),
        hit(1, 0, 0.9),
        hit(3, 0, 0.8),
        hit(2, 2, 0.8),
        hit(2, 1, 0.8),
        hit(0, 0, 0.1),
        hit(1, 1, 0.9),
    ];
    let ranked = rank_entries(hits.clone(), 10);
    assert_eq!(
        ranked,
        vec![
            hit(1, 0, 0.9),
            hit(2, 1, 0.8),
            hit(3, 0, 0.8),
            hit(0, 0, 0.1)
        ]
    );
    assert_eq!(rank_entries(hits.clone(), 2), ranked[..2].to_vec());
    assert!(rank_entries(hits, 0).is_empty());
    assert!(rank_entries(Vec::new(), 3).is_empty());
}

/// rank_entries over every question gives exactly what ExactIndex gives, ties included.
/// Vectors are one-hot and queries small integers, so every score is exact whatever the
/// summation order and ties are plentiful.
#[test]
fn rank_entries_matches_exact_index() {
    let dim = 4;
    let mut entries = Vec::new();
    for i in 0..20 {
        entries.push(entry(
            &format!("e{i}"),
            Locale::ZhCn,
            if i % 2 == 0 { "a" } else { "b" },
            1 + i % 3,
        ));
    }
    let rows: usize = entries.iter().map(|e| e.questions.len()).sum();
    let mut data = vec![0.0f32; rows * dim];
    for r in 0..rows {
        data[r * dim + (r * 7 + r / 3) % dim] = 1.0;
    }
    let snapshot = Snapshot::from_vectors(
        entries.clone(),
        vec![(Locale::ZhCn, "one-hot".into(), dim, data)],
    )
    .expect("snapshot");
    let exact = ExactIndex::from_snapshot(&snapshot).expect("index");
    let block = &snapshot.locales[0];
    for seed in 0..40u64 {
        let query: Vec<f32> = noise(seed, dim).iter().map(|x| (x * 3.0).round()).collect();
        for intent in [None, Some("a"), Some("b")] {
            let filter = Filter {
                locale: Locale::ZhCn,
                intent: intent.map(str::to_owned),
            };
            let all: Vec<Hit> = block
                .rows
                .iter()
                .enumerate()
                .filter(|(_, q)| intent.is_none_or(|i| entries[q.entry_index as usize].intent == i))
                .map(|(r, q)| {
                    let score = block.row(r).iter().zip(&query).map(|(a, b)| a * b).sum();
                    hit(q.entry_index as usize, q.question_index as usize, score)
                })
                .collect();
            for k in [1, 3, 7, 50] {
                assert_eq!(
                    rank_entries(all.clone(), k),
                    exact.search(&query, &filter, k),
                    "seed {seed} intent {intent:?} k {k}"
                );
            }
        }
    }
}

#[test]
fn ranking_finality() {
    // Fewer points than asked for: everything matching was returned.
    assert!(ranking_is_final(&[hit(0, 0, 0.5)], 4, 100, 2));
    // The limit covers the whole collection.
    assert!(ranking_is_final(&[hit(0, 0, 0.5), hit(0, 1, 0.4)], 2, 2, 2));
    // Full page, k-th entry strictly above the lowest point: final.
    let page = [hit(0, 0, 0.9), hit(1, 0, 0.8), hit(1, 1, 0.7)];
    assert!(ranking_is_final(&page, 3, 100, 2));
    // Full page, k-th entry ties with the lowest point: a question not returned could tie.
    let page = [hit(0, 0, 0.9), hit(1, 0, 0.7), hit(1, 1, 0.7)];
    assert!(!ranking_is_final(&page, 3, 100, 2));
    // Full page with fewer than k entries: more needed.
    let page = [hit(0, 0, 0.9), hit(0, 1, 0.8), hit(0, 2, 0.7)];
    assert!(!ranking_is_final(&page, 3, 100, 2));
}

#[test]
fn settings_from_lookup() {
    let lookup = |vars: &'static [(&'static str, &'static str)]| {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        move |name: &str| map.get(name).map(|v| v.to_string())
    };
    assert!(QdrantSettings::from_lookup(lookup(&[]))
        .expect("ok")
        .is_none());
    assert!(QdrantSettings::from_lookup(lookup(&[("QDRANT_URL", "  ")]))
        .expect("ok")
        .is_none());
    let s = QdrantSettings::from_lookup(lookup(&[("QDRANT_URL", "http://127.0.0.1:6334")]))
        .expect("ok")
        .expect("some");
    assert_eq!(s.url, "http://127.0.0.1:6334");
    assert_eq!(s.api_key, None);
    assert_eq!(s.collection_prefix, DEFAULT_COLLECTION_PREFIX);
    assert!(!s.exact);
    let s = QdrantSettings::from_lookup(lookup(&[
        ("QDRANT_URL", "http://q:6334"),
        ("QDRANT_API_KEY", "secret"),
        ("QDRANT_COLLECTION_PREFIX", "tenant_a"),
    ]))
    .expect("ok")
    .expect("some");
    assert_eq!(s.api_key.as_deref(), Some("secret"));
    assert_eq!(s.collection_prefix, "tenant_a");
    assert!(!format!("{s:?}").contains("secret"), "the key is redacted");
    assert!(matches!(
        QdrantSettings::from_lookup(lookup(&[
            ("QDRANT_URL", "http://q:6334"),
            ("QDRANT_COLLECTION_PREFIX", "bad prefix"),
        ])),
        Err(QdrantError::BadPrefix(_))
    ));
}

/// A loopback URL where nothing listens (a port just released by the OS).
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn dead_index() -> QdrantIndex {
    let mut settings = QdrantSettings::new(dead_url());
    settings.timeout = Duration::from_secs(2);
    QdrantIndex::connect_lazy(settings).expect("lazy index")
}

#[test]
fn unreachable_server_gives_errors_and_empty_searches() {
    let snapshot = small_snapshot();
    let err = QdrantIndex::connect(&dead_url(), None, "kb").unwrap_err();
    assert!(err.to_string().contains("health check"), "{err}");
    assert!(QdrantIndex::connect(&dead_url(), None, "bad prefix").is_err());
    assert!(QdrantIndex::connect("", None, "kb").is_err());

    let index = dead_index();
    let query = vec![0.25f32; 16];
    let zh = Filter::locale(Locale::ZhCn);
    assert_eq!(index.len(), 0);
    assert!(index.is_empty());
    assert!(index.search(&query, &zh, 5).is_empty(), "nothing bound");
    assert!(index.sync_snapshot(&snapshot).is_err());
    assert_eq!(index.version(), None, "a failed sync binds nothing");

    index.attach_snapshot(&snapshot).expect("attach");
    assert_eq!(index.version().as_deref(), Some(snapshot.version.as_str()));
    let rows: usize = snapshot.locales.iter().map(|l| l.rows.len()).sum();
    assert_eq!(index.len(), rows);
    // Server down: logged, no hit, no panic.
    assert!(index.search(&query, &zh, 5).is_empty());
    // ... and an error, that may pass, where the caller asks for one.
    let failed = index.try_search(&query, &zh, 5).expect_err("server down");
    assert!(failed.is_transient(), "{failed}");
    assert!(failed.to_string().starts_with("qdrant: "), "{failed}");
    assert!(index
        .search(&query, &Filter::intent(Locale::ZhCn, "invoice"), 5)
        .is_empty());
    // Refused before any request.
    assert!(index.search(&query[..3], &zh, 5).is_empty(), "width");
    assert!(index.search(&[f32::NAN; 16], &zh, 5).is_empty());
    assert!(index.search(&query, &zh, 0).is_empty());
    // A clone keeps the binding; re-binding the clone leaves the original alone.
    let clone = index.clone();
    assert_eq!(clone.len(), rows);
    assert!(format!("{clone:?}").contains(&snapshot.version));

    // Inconsistent snapshots are refused.
    let mut broken = snapshot.clone();
    broken.locales[0].data.pop();
    assert!(index.attach_snapshot(&broken).is_err());
    let mut broken = snapshot.clone();
    broken.version = "not/a/version".into();
    assert!(index.attach_snapshot(&broken).is_err());
    assert_eq!(index.len(), rows, "refused snapshots leave the binding");
}

#[tokio::test(flavor = "current_thread")]
async fn search_inside_a_current_thread_runtime() {
    let index = dead_index();
    index.attach_snapshot(&small_snapshot()).expect("attach");
    assert!(index
        .search(&[0.5; 16], &Filter::locale(Locale::ZhCn), 3)
        .is_empty());
    // Dropping the index (and its runtime) inside a runtime must not panic either.
    drop(index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_inside_a_multi_thread_runtime() {
    let index = std::sync::Arc::new(dead_index());
    index.attach_snapshot(&small_snapshot()).expect("attach");
    let other = std::sync::Arc::clone(&index);
    let task = tokio::spawn(async move {
        other
            .search(&[0.5; 16], &Filter::locale(Locale::ZhCn), 3)
            .len()
    });
    assert!(index
        .search(&[0.5; 16], &Filter::locale(Locale::ZhCn), 3)
        .is_empty());
    assert_eq!(task.await.expect("task"), 0);
    assert!(index.sync_snapshot(&small_snapshot()).is_err());
}

// ---------------------------------------------------------------------------------------------
// With a server (QDRANT_URL)
// ---------------------------------------------------------------------------------------------

/// An index on the server at QDRANT_URL with a collection prefix unique to this test, exact
/// search on; `None` (after printing the skip line) without QDRANT_URL.
fn server_index(test: &str) -> Option<QdrantIndex> {
    let Some(mut settings) = QdrantSettings::from_env().expect("valid Qdrant settings") else {
        eprintln!("{SKIP}");
        return None;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    settings.collection_prefix = format!("sbtest_{test}_{}_{nanos}", std::process::id());
    settings.exact = true;
    Some(QdrantIndex::connect_with(settings).expect("connect to QDRANT_URL"))
}

/// Queries around the snapshot's own vectors (to hit the duplicates and their ties) and
/// random ones, per locale.
fn queries(snapshot: &Snapshot) -> Vec<(Locale, Vec<f32>)> {
    let mut out = Vec::new();
    for block in &snapshot.locales {
        for r in [0, 1, 3, 5] {
            out.push((block.locale, block.row(r).to_vec()));
        }
        for seed in 0..6 {
            let mut q = noise(100 + seed, block.dim);
            if seed % 2 == 0 {
                // Not unit length: scores scale with the norm, as in ExactIndex.
                q.iter_mut().for_each(|x| *x *= 3.0);
            }
            out.push((block.locale, q));
        }
    }
    out
}

fn assert_same(got: &[Hit], want: &[Hit], what: &str) {
    let ids = |h: &[Hit]| {
        h.iter()
            .map(|h| (h.entry_index, h.question_index))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(got), ids(want), "{what}: entries and questions");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.score - w.score).abs() < 1e-4,
            "{what}: score {} vs {}",
            g.score,
            w.score
        );
    }
}

#[test]
fn qdrant_matches_exact_index() {
    let Some(index) = server_index("match") else {
        return;
    };
    let snapshot = small_snapshot();
    let exact = ExactIndex::from_snapshot(&snapshot).expect("exact index");
    index.sync_snapshot(&snapshot).expect("sync");
    // Syncing again is harmless.
    index.sync_snapshot(&snapshot).expect("sync again");
    assert_eq!(index.len(), exact.len());

    let filters = [
        (Locale::ZhCn, None),
        (Locale::ZhCn, Some("return_goods")),
        (Locale::ZhCn, Some("invoice")),
        (Locale::ZhCn, Some("no_such_intent")),
        (Locale::En, None),
        (Locale::En, Some("invoice")),
    ];
    for (i, (locale, query)) in queries(&snapshot).into_iter().enumerate() {
        for (filter_locale, intent) in filters {
            if filter_locale != locale {
                continue;
            }
            let filter = Filter {
                locale,
                intent: intent.map(str::to_owned),
            };
            for k in [1, 2, 4, 100] {
                let want = exact.search(&query, &filter, k);
                let got = index.search(&query, &filter, k);
                assert_same(&got, &want, &format!("query {i} {filter:?} k {k}"));
            }
        }
    }

    // A second process that only attaches sees the same.
    let reader = QdrantIndex::connect_with(index.settings().clone()).expect("connect");
    reader.attach_snapshot(&snapshot).expect("attach");
    let (locale, query) = &queries(&snapshot)[0];
    assert_same(
        &reader.search(query, &Filter::locale(*locale), 5),
        &exact.search(query, &Filter::locale(*locale), 5),
        "attached reader",
    );

    assert_eq!(index.delete_snapshot(&snapshot).expect("delete"), 2);
    assert!(
        index.search(query, &Filter::locale(*locale), 5).is_empty(),
        "collections gone: logged, no hit"
    );
}

#[test]
fn qdrant_retriever_matches_exact_retriever() {
    let Some(index) = server_index("retriever") else {
        return;
    };
    let snapshot = small_snapshot();
    index.sync_snapshot(&snapshot).expect("sync");
    let config = RetrieverConfig {
        threshold: switchboard_operators::retrieval::Thresholds::all(0.0),
        ..RetrieverConfig::default()
    };
    let exact = Retriever::new(snapshot.clone(), config).expect("retriever");
    let qdrant = Retriever::with_index(snapshot.clone(), Arc::new(index.clone()), config);
    for (locale, query) in queries(&snapshot) {
        for intent in [None, Some("invoice")] {
            let want = exact.rank(locale, intent, "zh3 question 1", &query, 5);
            let got = qdrant.rank(locale, intent, "zh3 question 1", &query, 5);
            let ids = |r: &[switchboard_operators::retrieval::Retrieved<'_>]| {
                r.iter()
                    .map(|h| (h.entry_index, h.question_index))
                    .collect::<Vec<_>>()
            };
            assert_eq!(ids(&got), ids(&want), "{locale:?} {intent:?}");
        }
    }
    let _ = index.delete_snapshot(&snapshot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_inside_a_runtime() {
    let Some(index) = server_index("runtime") else {
        return;
    };
    let snapshot = small_snapshot();
    index.sync_snapshot(&snapshot).expect("sync");
    let exact = ExactIndex::from_snapshot(&snapshot).expect("exact index");
    let (locale, query) = queries(&snapshot).remove(0);
    let filter = Filter::locale(locale);
    assert_same(
        &index.search(&query, &filter, 3),
        &exact.search(&query, &filter, 3),
        "inside a runtime",
    );
    let _ = index.delete_snapshot(&snapshot);
}
