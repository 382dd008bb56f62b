//! Unit tests of PII detection and masking.

use super::*;

fn kinds(text: &str) -> Vec<PiiKind> {
    find(text).into_iter().map(|s| s.kind).collect()
}

fn slices(text: &str) -> Vec<&str> {
    find(text)
        .into_iter()
        .map(|s| &text[s.start..s.end])
        .collect()
}

#[test]
fn luhn_and_id_checksums() {
    assert!(luhn_valid("4111111111111111"));
    assert!(luhn_valid("6222021234567890128"));
    assert!(!luhn_valid("6222021234567890127"));
    assert!(!luhn_valid(""));
    assert!(!luhn_valid("0"));
    assert!(!luhn_valid("4111-1111-1111-1111"));
    assert!(!luhn_valid("４１１１１１１１１１１１１１１１"));

    assert!(id_checksum_valid("11010519491231002X"));
    assert!(id_checksum_valid("11010519491231002x"));
    assert!(id_checksum_valid("110101199003071233"));
    assert!(!id_checksum_valid("110101199003071234"));
    assert!(!id_checksum_valid("11010119900307123"));
    assert!(!id_checksum_valid("1101011990030712355"));
    assert!(!id_checksum_valid("11010119900307123 5"));
    assert!(!id_checksum_valid("X10101199003071235"));
    assert!(!id_checksum_valid("一二三四五六七八九十一二三四五六七八"));
}

#[test]
fn mobile_formats() {
    for (input, expected) in [
        ("13812345678", "138****5678"),
        ("138 1234 5678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("138 12345678", "138****5678"),
        ("1381234 5678", "138****5678"),
        ("+86 138 1234 5678", "+86 138****5678"),
        ("+86-13812345678", "+86-138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("8613812345678", "86138****5678"),
        ("008613812345678", "0086138****5678"),
        ("１３８１２３４５６７８", "138****5678"),
        ("１３８－１２３４－５６７８", "138****5678"),
    ] {
        assert_eq!(mask(input), expected, "input {input:?}");
        assert_eq!(kinds(input), [PiiKind::Mobile], "input {input:?}");
    }
}

#[test]
fn mobile_span_excludes_country_prefix() {
    let text = "电话+8613812345678";
    assert_eq!(slices(text), ["13812345678"]);
    let text = "tel +86 138-1234-5678.";
    assert_eq!(slices(text), ["138-1234-5678"]);
}

#[test]
fn bounded_numbers_only() {
    // Embedded in a longer digit run.
    assert!(!contains_pii("1234567890138123456781234"));
    assert!(!contains_pii("9913812345678"));
    assert!(!contains_pii("138123456789"));
    // Directly after Latin letters: tracking numbers.
    assert!(!contains_pii("SF13812345678"));
    assert!(!contains_pii("快递单号 SF1234567890"));
    assert!(!contains_pii("ＳＦ１３８１２３４５６７８"));
    // Not a mobile prefix.
    assert!(!contains_pii("12812345678"));
    assert!(!contains_pii("10086"));
    // Odd groupings are not mobile numbers.
    assert!(!contains_pii("1 3812345678"));
    assert!(!contains_pii("13 81 23 45 67 8"));
}

#[test]
fn order_numbers_left_alone() {
    for text in [
        "订单号 2024113051",
        "订单号2024113051，请尽快发货",
        "order #12345678 and 987654321012",
        "订单 12345678 已发货",
    ] {
        assert!(!contains_pii(text), "{text:?}");
        assert!(matches!(mask(text), Cow::Borrowed(_)));
    }
}

#[test]
fn id_numbers() {
    assert_eq!(
        mask("身份证号110105194912310021"),
        "身份证号110105194912310021"
    );
    assert_eq!(
        mask("身份证号11010519491231002X"),
        "身份证号**************002X"
    );
    assert_eq!(
        mask("身份证号11010519491231002x。"),
        "身份证号**************002X。"
    );
    assert_eq!(mask("ID: 110105 19491231 002X"), "ID: **************002X");
    assert_eq!(
        mask("ID: 110105-1949-1231-002X ok"),
        "ID: **************002X ok"
    );
    assert_eq!(mask("110101199003071233"), "**************1233");
    assert_eq!(kinds("110101199003071233"), [PiiKind::IdNumber]);
    // An X followed by letters is not a check character.
    assert!(!contains_pii("11010519491231002Xyz"));
}

#[test]
fn id_wins_over_card() {
    // 17 digits with a check digit that is both ID-valid and Luhn-valid.
    let id = (0u64..)
        .map(|n| format!("{:017}", 11010119900307000 + n))
        .find_map(|base| {
            (b'0'..=b'9')
                .map(|d| format!("{base}{}", char::from(d)))
                .find(|s| id_checksum_valid(s) && luhn_valid(s))
        })
        .expect("some ID is also Luhn-valid");
    assert_eq!(kinds(&id), [PiiKind::IdNumber]);
}

#[test]
fn bank_cards() {
    assert_eq!(
        mask("卡号 6222 0212 3456 7890 128"),
        "卡号 ***************0128"
    );
    assert_eq!(
        mask("卡号6222-0212-3456-7890-128谢谢"),
        "卡号***************0128谢谢"
    );
    assert_eq!(mask("card 4111111111111111."), "card ************1111.");
    assert_eq!(mask("622202 1234567890128"), "***************0128");
    assert_eq!(kinds("4111 1111 1111 1111"), [PiiKind::BankCard]);
    // Invalid Luhn.
    assert!(!contains_pii("卡号 6222 0212 3456 7890 127"));
    assert!(!contains_pii("4111111111111112"));
}

#[test]
fn emails() {
    assert_eq!(mask("zhang.san@example.com"), "z***@example.com");
    assert_eq!(
        mask("邮箱zhang.san@example.com谢谢"),
        "邮箱z***@example.com谢谢"
    );
    assert_eq!(mask("mail a@b.co, thanks"), "mail a***@b.co, thanks");
    assert_eq!(mask("13812345678@qq.com"), "1***@qq.com");
    assert_eq!(kinds("13812345678@qq.com"), [PiiKind::Email]);
    assert_eq!(mask("**li@x.cn**"), "**l***@x.cn**");
    // Already masked addresses are not PII any more.
    assert!(!contains_pii("z***@example.com"));
    assert!(!contains_pii("not an email: a@b, x@localhost"));
}

#[test]
fn chained_emails_mask_idempotently() {
    let once = mask("ab@cd.ef@gh.com").into_owned();
    assert_eq!(once, "a***@c***@gh.com");
    assert_eq!(mask(&once), once);
}

#[test]
fn several_in_one_sentence() {
    let text = "张先生，手机13812345678，身份证11010519491231002X，卡号6222021234567890128，\
                邮箱zs@163.com，订单号2024113051。";
    assert_eq!(
        kinds(text),
        [
            PiiKind::Mobile,
            PiiKind::IdNumber,
            PiiKind::BankCard,
            PiiKind::Email
        ]
    );
    assert_eq!(
        mask(text),
        "张先生，手机138****5678，身份证**************002X，卡号***************0128，\
         邮箱z***@163.com，订单号2024113051。"
    );
    let text = "Call 139-0000-1111 or 13700002222, card 4111 1111 1111 1111";
    assert_eq!(
        mask(text),
        "Call 139****1111 or 137****2222, card ************1111"
    );
    // Two numbers separated by one space are still two numbers.
    assert_eq!(mask("13812345678 13912345678"), "138****5678 139****5678");
}

#[test]
fn masked_remnants_do_not_join_neighbours() {
    // After masking, `5678 9012 3456 7890` must not look like a card.
    let text = "13812345678 9012 3456 7890 1234";
    let once = mask(text).into_owned();
    assert_eq!(mask(&once), once);
    assert!(!contains_pii(&once));
    // A markdown-bold number is still masked.
    assert_eq!(mask("**13812345678**"), "**138****5678**");
    // The kept first character of a masked email does not extend a card.
    let text = "6222 0212 3456 7890 3@4.cc@x.com";
    let once = mask(text).into_owned();
    assert_eq!(once, "6222 0212 3456 7890 3***@4***@x.com");
    assert_eq!(mask(&once), once);
}

#[test]
fn a_wide_gap_separates_numbers_narrow_separators_mix() {
    // A card followed by a mobile number, two spaces apart: the `138` group must not be
    // taken as the tail of a 19-digit card.
    let text = "4111 1111 1111 1111  138 1234 5678";
    assert_eq!(mask(text), "************1111  138****5678");
    // Narrow separators as people mix them (found by topology/tests/pii_audit.rs).
    for typed in [
        "138 1234-5678",
        "138.1234.5678",
        "(138)1234-5678",
        "138_1234_5678",
        "(138) 1234-5678",
    ] {
        assert_eq!(
            mask(typed).replace(['(', ')', ' '], ""),
            "138****5678",
            "{typed}"
        );
    }
    assert_eq!(mask("4111.1111.1111.1111"), "************1111");
    assert_eq!(mask("+86(138)12345678"), "+86(138****5678");
}

#[test]
fn full_width_at_sign() {
    let masked = mask("邮箱zhang.san＠example.com谢谢");
    assert_eq!(masked, "邮箱z***＠example.com谢谢");
    assert_eq!(mask(&masked), masked);
    assert!(!contains_pii(&masked));
}

#[test]
fn nothing_found_borrows() {
    assert!(matches!(mask(""), Cow::Borrowed("")));
    assert!(matches!(mask("你好，我想查询一下物流"), Cow::Borrowed(_)));
    assert!(find("").is_empty());
}

#[test]
fn spans_are_sorted_and_on_char_boundaries() {
    let text = "ａ１３８１２３４５６７８ 号码：１３８１２３４５６７８，x@y.org 13912345678";
    let spans = find(text);
    assert_eq!(spans.len(), 3);
    for w in spans.windows(2) {
        assert!(w[0].end <= w[1].start);
    }
    for s in &spans {
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
    }
}
