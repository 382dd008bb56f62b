//! Unit tests of knowledge-base parsing and validation.

use super::*;
use crate::render::TemplateError;
use switchboard_schemas::Locale;

const GOOD: &str = r#"{"id":"zh-1","locale":"zh-CN","intent":"return_goods","questions":["我要退货"],"answer":"订单 {order_id} 已提交。","slots":["order_id"]}"#;

fn problems(text: &str, format: KbFormat) -> Vec<KbProblem> {
    match parse_kb_str(text, format, "kb.jsonl") {
        Err(KbError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn parses_a_good_line() {
    let entries = parse_kb_str(GOOD, KbFormat::JsonLines, "kb.jsonl").unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].locale, Locale::ZhCn);
    assert_eq!(entries[0].slots, ["order_id"]);
}

#[test]
fn collects_every_problem_with_lines() {
    let text = format!(
        "{GOOD}\n\n{}\n{}\n{}\n",
        GOOD, // duplicate id on line 3
        r#"{"id":"x","locale":"fr","intent":"a","questions":[],"answer":"{a} {b","slots":["c"]}"#,
        r#"not json"#,
    );
    let p = problems(&text, KbFormat::JsonLines);
    let kinds: Vec<_> = p
        .iter()
        .map(|p| (p.location.line, p.kind.clone()))
        .collect();
    assert!(
        matches!(&kinds[0], (Some(3), ProblemKind::DuplicateId { id, first }) if id == "zh-1" && first.line == Some(1))
    );
    assert!(kinds.contains(&(Some(4), ProblemKind::UnknownLocale("fr".into()))));
    assert!(kinds.contains(&(Some(4), ProblemKind::EmptyQuestions)));
    assert!(kinds.contains(&(
        Some(4),
        ProblemKind::BadTemplate(TemplateError::UnclosedBrace(4))
    )));
    assert!(matches!(
        kinds.last(),
        Some((Some(5), ProblemKind::Syntax(_)))
    ));
    let shown = p[0].to_string();
    assert!(
        shown.starts_with("kb.jsonl:3 (entry #2) [zh-1]: duplicate id"),
        "{shown}"
    );
}

#[test]
fn reports_at_most_the_limit() {
    let bad = r#"{"id":"","locale":"en","intent":"a","questions":["q"],"answer":"a"}"#;
    let text = vec![bad; MAX_REPORTED_PROBLEMS + 7].join("\n");
    match parse_kb_str(&text, KbFormat::JsonLines, "x.jsonl") {
        Err(KbError::Invalid { problems, total }) => {
            assert_eq!(problems.len(), MAX_REPORTED_PROBLEMS);
            assert_eq!(total, MAX_REPORTED_PROBLEMS + 7);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn yaml_lines_point_at_the_item() {
    let text = "- id: a\n  locale: en\n  intent: x\n  questions: [hi]\n  answer: hello\n\
                - id: b\n  locale: en\n  intent: x\n  questions: []\n  answer: hello {name}\n";
    let p = problems(text, KbFormat::Yaml);
    assert_eq!(p.len(), 2);
    assert!(p
        .iter()
        .all(|p| p.location.line == Some(6) && p.location.entry == Some(1)));
    assert_eq!(p[1].kind, ProblemKind::UndeclaredSlot("name".into()));
}
