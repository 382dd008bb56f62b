//! Rendering: templates filled from slots, missing slots reported, slot values cannot inject
//! braces or control characters; slot extraction from Chinese and English text.

use std::collections::BTreeMap;

use switchboard_operators::render::{
    ask_for_slot, clarify, extract_slots, render, RenderError, MAX_SLOT_CHARS,
};
use switchboard_schemas::Locale;

fn slots(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn fills_every_slot() {
    let template =
        "好的，订单 {order_id} 的退款 {amount} 将于 {date} 前退回，快递单号 {tracking_no}。";
    let filled = render(
        template,
        &slots(&[
            ("order_id", "2024113051"),
            ("amount", "¥199"),
            ("date", "11-24"),
            ("tracking_no", "SF1234567890"),
            ("unused", "x"),
        ]),
    )
    .expect("all slots present");
    assert_eq!(
        filled,
        "好的，订单 2024113051 的退款 ¥199 将于 11-24 前退回，快递单号 SF1234567890。"
    );
    assert_eq!(
        render("Hello!", &BTreeMap::new()).expect("no slots"),
        "Hello!"
    );
}

#[test]
fn reports_missing_slots() {
    let template = "Order {order_id}: refund of {amount} on {date}.";
    let err = render(template, &slots(&[("amount", "$20.5")])).expect_err("missing");
    assert_eq!(
        err,
        RenderError::MissingSlots(vec!["date".into(), "order_id".into()])
    );
    // A value that is empty after cleaning counts as missing.
    let err = render(
        template,
        &slots(&[("order_id", "\u{0}\u{7}{}"), ("amount", "1"), ("date", " ")]),
    )
    .expect_err("missing");
    assert_eq!(
        err,
        RenderError::MissingSlots(vec!["date".into(), "order_id".into()])
    );
}

#[test]
fn slot_values_cannot_inject_braces_or_control_characters() {
    let template = "订单 {order_id} 已提交，金额 {amount}。";
    let filled = render(
        template,
        &slots(&[
            ("order_id", "{amount}\u{1b}[31m\r\n12345678\u{202E}\u{200B}"),
            ("amount", "¥1{{0}}0\t"),
        ]),
    )
    .expect("rendered");
    assert_eq!(filled, "订单 amount[31m12345678 已提交，金额 ¥100。");
    assert!(!filled
        .chars()
        .any(|c| c.is_control() || c == '\u{202E}' || c == '\u{200B}'));
    assert_eq!(filled.matches(['{', '}']).count(), 0);
    // Long values are cut.
    let long = "9".repeat(10_000);
    let filled = render("[{order_id}]", &slots(&[("order_id", &long)])).expect("rendered");
    assert_eq!(filled.chars().count(), MAX_SLOT_CHARS + 2);
    // Markup is not this layer's job: it passes through for the HTML-escaping layer.
    assert_eq!(
        render("{x}", &slots(&[("x", "<b>&</b>")])).expect("rendered"),
        "<b>&</b>"
    );
}

#[test]
fn extracts_slots_from_chinese_text() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "订单 2024113051 的东西不想要了",
            &[("order_id", "2024113051")],
        ),
        (
            "订单号：20240923316，钱退了吗",
            &[("order_id", "20240923316")],
        ),
        (
            "快递单号SF1234567890一直没更新",
            &[("tracking_no", "SF1234567890")],
        ),
        ("我付了 299 元，怎么只退回来 259 元", &[("amount", "¥299")]),
        ("退款￥199.50还没到", &[("amount", "¥199.50")]),
        (
            "11月24日下的单，订单12345678",
            &[("date", "11-24"), ("order_id", "12345678")],
        ),
        ("2026年3月5号买的", &[("date", "2026-03-05")]),
        ("２０２４１１３０５１ 这个单", &[("order_id", "2024113051")]),
        // A mobile number is not an order number; digits inside a tracking number are not either.
        ("我手机13812345678", &[]),
        (
            "YT12345678901234 到哪了",
            &[("tracking_no", "YT12345678901234")],
        ),
        // Too short / too long digit runs.
        ("订单 1234567", &[]),
        ("订单 1234567890123", &[]),
        ("你好", &[]),
    ];
    for (text, want) in cases {
        assert_eq!(extract_slots(text), slots(want), "{text}");
    }
}

#[test]
fn extracts_slots_from_english_text() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "I'd like to send back the stuff from order 2024113051",
            &[("order_id", "2024113051")],
        ),
        ("order #98765432 never arrived", &[("order_id", "98765432")]),
        ("order no. 123456789 please", &[("order_id", "123456789")]),
        ("I was charged $20.5 twice", &[("amount", "$20.5")]),
        ("refund of 1,299 dollars", &[("amount", "$1,299")]),
        ("delivered on 2026-11-24", &[("date", "2026-11-24")]),
        ("it came on 11/24", &[("date", "11-24")]),
        ("ordered on Nov 3rd", &[("date", "11-03")]),
        (
            "tracking SF1234567890 stuck",
            &[("tracking_no", "SF1234567890")],
        ),
        (
            "paid $35 on 2026/01/02 for order 55512345",
            &[
                ("amount", "$35"),
                ("date", "2026-01-02"),
                ("order_id", "55512345"),
            ],
        ),
        ("13/45 is not a date", &[]),
        ("hello", &[]),
    ];
    for (text, want) in cases {
        assert_eq!(extract_slots(text), slots(want), "{text}");
    }
}

#[test]
fn questions_for_slots_and_clarification() {
    assert_eq!(
        ask_for_slot("order_id", Locale::ZhCn),
        "请提供您的订单号（8–12 位数字）。"
    );
    assert_eq!(
        ask_for_slot("order_id", Locale::En),
        "Could you give me your order number (8–12 digits)?"
    );
    for slot in ["tracking_no", "amount", "date", "coupon_code"] {
        for locale in [Locale::ZhCn, Locale::En] {
            let q = ask_for_slot(slot, locale);
            assert!(!q.is_empty() && !q.contains(['{', '}']), "{slot}: {q}");
        }
    }
    assert!(ask_for_slot("coupon_code", Locale::En).contains("coupon code"));
    assert!(!clarify(Locale::ZhCn).is_empty() && clarify(Locale::ZhCn) != clarify(Locale::En));
}
