//! Knowledge-base files: problems name the file and the line, all problems are collected, and
//! YAML and JSON Lines give the same entries.

use std::path::PathBuf;

use switchboard_operators::retrieval::kb::{
    load_kb, parse_kb_file, KbError, KbProblem, ProblemKind, MAX_TEXT_CHARS,
};
use switchboard_schemas::Locale;

/// A fresh folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-kb-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn invalid(result: Result<impl std::fmt::Debug, KbError>) -> (Vec<KbProblem>, usize, String) {
    match result {
        Err(e @ KbError::Invalid { .. }) => {
            let shown = e.to_string();
            let KbError::Invalid { problems, total } = e else {
                unreachable!()
            };
            (problems, total, shown)
        }
        other => panic!("expected KbError::Invalid, got {other:?}"),
    }
}

const JSONL: &str = r#"{"id":"zh-return-goods-001","locale":"zh-CN","intent":"return_goods","questions":["我要退货","这个东西怎么退"],"answer":"好的，订单 {order_id} 的退货申请已提交。","slots":["order_id"]}
{"id":"en-invoice-001","locale":"en","intent":"invoice","questions":["I need an invoice"],"answer":"Invoices are under My orders → Invoice.","slots":[]}
{"id":"zh-refund-001","locale":"zh-CN","intent":"refund_progress","questions":["退款到哪了"],"answer":"{amount} 将于 {date} 前退回。","slots":["amount","date"]}
"#;

const YAML: &str = r#"# The same three entries in YAML.
- id: zh-return-goods-001
  locale: zh-CN
  intent: return_goods
  questions:
    - 我要退货
    - 这个东西怎么退
  answer: "好的，订单 {order_id} 的退货申请已提交。"
  slots: [order_id]
- id: en-invoice-001
  locale: en
  intent: invoice
  questions: [I need an invoice]
  answer: >-
    Invoices are under My orders → Invoice.
- id: zh-refund-001
  locale: zh-CN
  intent: refund_progress
  questions: [退款到哪了]
  answer: "{amount} 将于 {date} 前退回。"
  slots:
    - amount
    - date
"#;

#[test]
fn yaml_and_jsonl_give_the_same_entries() {
    let dir = TempDir::new("same");
    let from_jsonl = parse_kb_file(dir.write("kb.jsonl", JSONL)).expect("jsonl parses");
    let from_yaml = parse_kb_file(dir.write("kb.yaml", YAML)).expect("yaml parses");
    let from_yml = parse_kb_file(dir.write("kb.yml", YAML)).expect("yml parses");
    assert_eq!(from_jsonl.len(), 3);
    assert_eq!(from_jsonl, from_yaml);
    assert_eq!(from_yaml, from_yml);
    assert_eq!(from_jsonl[1].locale, Locale::En);
    assert!(from_jsonl[1].slots.is_empty());
    // A .json file with one JSON array is accepted too.
    let array = format!("[{}]", JSONL.trim().lines().collect::<Vec<_>>().join(",\n"));
    assert_eq!(
        parse_kb_file(dir.write("kb.json", &array)).expect("json array"),
        from_jsonl
    );
}

#[test]
fn jsonl_problems_name_file_and_line_and_are_all_collected() {
    let dir = TempDir::new("bad-jsonl");
    let long = "很".repeat(MAX_TEXT_CHARS + 1);
    let lines = [
        // 1: fine
        r#"{"id":"a","locale":"zh-CN","intent":"x","questions":["q"],"answer":"ok"}"#.to_string(),
        // 2: blank line (skipped)
        String::new(),
        // 3: duplicate id
        r#"{"id":"a","locale":"en","intent":"x","questions":["q"],"answer":"ok"}"#.to_string(),
        // 4: empty questions + unknown locale
        r#"{"id":"b","locale":"fr","intent":"x","questions":[],"answer":"ok"}"#.to_string(),
        // 5: slot used but not listed, slot listed but unused
        r#"{"id":"c","locale":"en","intent":"x","questions":["q"],"answer":"order {order_id}","slots":["amount"]}"#.to_string(),
        // 6: unbalanced braces
        r#"{"id":"d","locale":"en","intent":"x","questions":["q"],"answer":"order {order_id","slots":["order_id"]}"#.to_string(),
        // 7: empty answer
        r#"{"id":"e","locale":"en","intent":"x","questions":["q"],"answer":"  "}"#.to_string(),
        // 8: too long
        format!(r#"{{"id":"f","locale":"zh-CN","intent":"x","questions":["q"],"answer":"{long}"}}"#),
        // 9: not JSON at all
        "{not json".to_string(),
        // 10: missing field
        r#"{"id":"g","locale":"en","questions":["q"],"answer":"ok"}"#.to_string(),
        // 11: stray closing brace
        r#"{"id":"h","locale":"en","intent":"x","questions":["q"],"answer":"oops }"}"#.to_string(),
    ];
    let path = dir.write("broken.jsonl", &lines.join("\n"));
    let (problems, total, shown) = invalid(parse_kb_file(&path));
    assert_eq!(total, problems.len());
    let at = |line: usize| -> Vec<&ProblemKind> {
        problems
            .iter()
            .filter(|p| p.location.line == Some(line))
            .map(|p| &p.kind)
            .collect()
    };
    assert!(
        problems.iter().all(|p| p.location.path == path),
        "every problem names the file"
    );
    assert!(
        matches!(at(3)[..], [ProblemKind::DuplicateId { ref id, ref first }] if id == "a" && first.line == Some(1))
    );
    assert!(at(4).contains(&&ProblemKind::EmptyQuestions));
    assert!(at(4).contains(&&ProblemKind::UnknownLocale("fr".into())));
    assert!(at(5).contains(&&ProblemKind::UndeclaredSlot("order_id".into())));
    assert!(at(5).contains(&&ProblemKind::UnusedSlot("amount".into())));
    assert!(matches!(at(6)[..], [ProblemKind::BadTemplate(_)]));
    assert_eq!(at(7), [&ProblemKind::EmptyAnswer]);
    assert!(
        matches!(at(8)[..], [ProblemKind::TooLong { ref field, chars }] if field == "answer" && *chars == MAX_TEXT_CHARS + 1)
    );
    assert!(matches!(at(9)[..], [ProblemKind::Syntax(_)]));
    assert!(matches!(at(10)[..], [ProblemKind::Syntax(ref m)] if m.contains("intent")));
    assert!(matches!(at(11)[..], [ProblemKind::BadTemplate(_)]));
    assert!(at(1).is_empty());
    // Problems come in line order, and the message names the file and line.
    let lines_seen: Vec<usize> = problems.iter().filter_map(|p| p.location.line).collect();
    assert!(
        lines_seen.windows(2).all(|w| w[0] <= w[1]),
        "{lines_seen:?}"
    );
    let file = path.display().to_string();
    assert!(
        shown.contains(&format!("{file}:3 (entry #2) [a]: duplicate id `a`")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("{file}:4 (entry #3) [b]: unknown locale `fr`")),
        "{shown}"
    );
    assert!(shown.contains(&format!("{file}:9")), "{shown}");
}

#[test]
fn yaml_problems_name_the_item_line() {
    let dir = TempDir::new("bad-yaml");
    let text = "\
- id: a
  locale: en
  intent: x
  questions: [q]
  answer: ok
# a comment between items
- id: a
  locale: de
  intent: x
  questions: []
  answer: 'pay {amount}'
- id: c
  locale: en
  intent: x
  questions: [q]
  answer: ok
  extra: field
";
    let path = dir.write("kb.yaml", text);
    let (problems, _, shown) = invalid(parse_kb_file(&path));
    let at = |line: usize| -> Vec<&ProblemKind> {
        problems
            .iter()
            .filter(|p| p.location.line == Some(line))
            .map(|p| &p.kind)
            .collect()
    };
    assert!(matches!(at(7)[0], ProblemKind::DuplicateId { .. }));
    assert!(at(7).contains(&&ProblemKind::UnknownLocale("de".into())));
    assert!(at(7).contains(&&ProblemKind::EmptyQuestions));
    assert!(at(7).contains(&&ProblemKind::UndeclaredSlot("amount".into())));
    assert!(matches!(at(12)[..], [ProblemKind::Syntax(ref m)] if m.contains("extra")));
    assert_eq!(
        problems
            .iter()
            .find(|p| p.location.line == Some(12))
            .and_then(|p| p.location.entry),
        Some(2)
    );
    assert!(
        shown.contains(&format!("{}:7 (entry #2) [a]", path.display())),
        "{shown}"
    );

    // A YAML syntax error reports its line.
    let path = dir.write(
        "syntax.yml",
        "- id: a\n  questions: [unclosed\n  answer: x\n",
    );
    let (problems, _, _) = invalid(parse_kb_file(&path));
    assert_eq!(problems.len(), 1);
    assert!(matches!(problems[0].kind, ProblemKind::Syntax(_)));
    assert!(problems[0].location.line.is_some());
}

#[test]
fn duplicate_ids_are_caught_across_files() {
    let dir = TempDir::new("cross");
    let a = dir.write("a.jsonl", JSONL);
    let b = dir.write("b.yaml", YAML);
    let (problems, total, _) = invalid(load_kb(&[&a, &b]));
    assert_eq!(total, 3);
    assert!(problems
        .iter()
        .all(|p| p.location.path == b && matches!(p.kind, ProblemKind::DuplicateId { .. })));
    let ProblemKind::DuplicateId { first, .. } = &problems[0].kind else {
        unreachable!()
    };
    assert_eq!((first.path.clone(), first.line), (a, Some(1)));
}

#[test]
fn unreadable_and_unknown_files_are_typed_errors() {
    let dir = TempDir::new("io");
    assert!(matches!(
        parse_kb_file(dir.0.join("missing.jsonl")),
        Err(KbError::Io { .. })
    ));
    assert!(matches!(
        parse_kb_file(dir.write("kb.txt", JSONL)),
        Err(KbError::UnsupportedFormat { .. })
    ));
    // An empty file is an empty knowledge base.
    assert_eq!(
        parse_kb_file(dir.write("empty.jsonl", "\n\n"))
            .expect("empty")
            .len(),
        0
    );
    assert_eq!(
        parse_kb_file(dir.write("empty.yaml", ""))
            .expect("empty")
            .len(),
        0
    );
}

#[test]
fn the_demo_knowledge_base_is_valid() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/kb");
    let entries = load_kb(&[root.join("kb.zh.jsonl"), root.join("kb.en.jsonl")])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(entries.iter().any(|e| e.locale == Locale::ZhCn));
    assert!(entries.iter().any(|e| e.locale == Locale::En));
}
