//! Lexical similarity: Chinese character n-grams and English words/3-grams rank the right
//! entry first, scores stay in [0, 1], and locales do not mix.

use switchboard_operators::retrieval::lexical::{features, LexicalIndex};
use switchboard_operators::retrieval::KbEntry;
use switchboard_schemas::Locale;

fn entry(id: &str, locale: Locale, questions: &[&str]) -> KbEntry {
    KbEntry {
        id: id.into(),
        locale,
        intent: "any".into(),
        questions: questions.iter().map(|q| q.to_string()).collect(),
        answer: "a".into(),
        slots: vec![],
    }
}

fn entries() -> Vec<KbEntry> {
    vec![
        entry(
            "return",
            Locale::ZhCn,
            &["我要退货", "这个东西怎么退", "买的衣服不合适想退掉"],
        ),
        entry(
            "shipping-fee",
            Locale::ZhCn,
            &["退货运费谁出", "寄回去的快递费能报销吗"],
        ),
        entry(
            "invoice",
            Locale::ZhCn,
            &["怎么开发票", "电子发票在哪里下载"],
        ),
        entry(
            "password",
            Locale::ZhCn,
            &["忘记密码了怎么办", "登录密码怎么重置"],
        ),
        entry(
            "en-return",
            Locale::En,
            &["I want to return an item", "How do I return this?"],
        ),
        entry(
            "en-invoice",
            Locale::En,
            &["I need an invoice", "Where can I download my invoice?"],
        ),
    ]
}

fn best(index: &LexicalIndex, locale: Locale, text: &str, n: usize) -> (usize, f32) {
    let q = index.query(locale, text);
    (0..n).map(|e| (e, q.score(e))).fold(
        (usize::MAX, -1.0),
        |acc, x| if x.1 > acc.1 { x } else { acc },
    )
}

#[test]
fn chinese_queries_match_by_character_ngrams() {
    let entries = entries();
    let index = LexicalIndex::new(&entries);
    assert_eq!(
        best(&index, Locale::ZhCn, "电子发票去哪下载", entries.len()).0,
        2
    );
    assert_eq!(best(&index, Locale::ZhCn, "密码忘了", entries.len()).0, 3);
    assert_eq!(
        best(&index, Locale::ZhCn, "退货的运费是谁出的", entries.len()).0,
        1
    );
    assert_eq!(
        best(&index, Locale::ZhCn, "衣服不合适，我要退", entries.len()).0,
        0
    );
    // An exact question scores 1; an unrelated text scores 0.
    assert!((index.similarity(Locale::ZhCn, "我要退货", 0) - 1.0).abs() < 1e-5);
    assert_eq!(index.similarity(Locale::ZhCn, "天气晴朗", 0), 0.0);
    // Full-width and ASCII punctuation or spaces do not matter.
    let a = index.similarity(Locale::ZhCn, "怎么开发票？", 2);
    let b = index.similarity(Locale::ZhCn, "怎么开发票 ?", 2);
    assert!((a - b).abs() < 1e-6 && a > 0.9);
}

#[test]
fn english_queries_match_words_and_trigrams() {
    let entries = entries();
    let index = LexicalIndex::new(&entries);
    assert_eq!(
        best(&index, Locale::En, "returning an item", entries.len()).0,
        4
    );
    assert_eq!(
        best(&index, Locale::En, "INVOICES download", entries.len()).0,
        5
    );
}

#[test]
fn scores_are_in_unit_range_and_locales_do_not_mix() {
    let entries = entries();
    let index = LexicalIndex::new(&entries);
    for text in [
        "我要退货我要退货我要退货",
        "退",
        "return return",
        "",
        "!!!",
        "订单 2024113051",
    ] {
        for locale in [Locale::ZhCn, Locale::En] {
            let q = index.query(locale, text);
            for (e, entry) in entries.iter().enumerate() {
                let s = q.score(e);
                assert!((0.0..=1.0).contains(&s), "{text}: {s}");
                if entry.locale != locale {
                    assert_eq!(s, 0.0);
                }
            }
            assert_eq!(q.score(999), 0.0);
        }
    }
}

#[test]
fn features_cover_cjk_unigrams_and_bigrams() {
    assert_eq!(features("退货"), ["退", "退货", "货"]);
    let f = features("订单2024113051退货");
    assert!(
        f.contains(&"<num>".to_string())
            && f.contains(&"单".to_string())
            && f.contains(&"退货".to_string())
    );
    assert!(!f.iter().any(|x| x.contains("2024")));
}

#[test]
fn two_indexes_over_the_same_entries_score_bit_identically() {
    // Hash maps are seeded per instance: nothing observable may depend on their order.
    let entries = entries();
    let a = LexicalIndex::new(&entries);
    let b = LexicalIndex::new(&entries);
    for text in [
        "退货的运费是谁出的",
        "电子发票去哪下载 invoice",
        "I want to return it",
        "密码 2024113051 忘了",
    ] {
        for locale in [Locale::ZhCn, Locale::En] {
            let (qa, qb) = (a.query(locale, text), b.query(locale, text));
            for e in 0..entries.len() {
                assert_eq!(
                    qa.score(e).to_bits(),
                    qb.score(e).to_bits(),
                    "{text} / entry {e}"
                );
            }
        }
    }
}
