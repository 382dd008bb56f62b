//! PII masking end to end: sentences in Chinese and English, and property tests that masking
//! never panics, is idempotent, and never lets a generated mobile number, resident ID or bank
//! card number through.

use std::borrow::Cow;

use proptest::prelude::*;
use switchboard_operators::pii::{self, PiiKind};

// ---------------------------------------------------------------------------------------------
// Generators of valid numbers
// ---------------------------------------------------------------------------------------------

fn digits_to_string(digits: &[u8]) -> String {
    digits.iter().map(|&d| char::from(b'0' + d)).collect()
}

/// The GB 11643 check character for 17 digits.
fn id_check_char(first17: &[u8]) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(&d, w)| u32::from(d) * w)
        .sum();
    char::from(b"10X98765432"[(sum % 11) as usize])
}

/// The Luhn check digit to append to `payload`.
fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn mobile() -> impl Strategy<Value = String> {
    (3u8..=9, prop::collection::vec(0u8..=9, 9)).prop_map(|(second, rest)| {
        let mut digits = vec![1, second];
        digits.extend(rest);
        digits_to_string(&digits)
    })
}

fn id_number() -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..=9, 17).prop_map(|first17| {
        let mut s = digits_to_string(&first17);
        s.push(id_check_char(&first17));
        s
    })
}

fn bank_card() -> impl Strategy<Value = String> {
    (1u8..=9, 16usize..=19).prop_flat_map(|(first, len)| {
        prop::collection::vec(0u8..=9, len - 2).prop_map(move |body| {
            let mut payload = vec![first];
            payload.extend(body);
            let check = luhn_check_digit(&payload);
            payload.push(check);
            digits_to_string(&payload)
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

fn group(digits: &str, sizes: &[usize], sep: &str) -> String {
    let mut out = String::new();
    let mut rest = digits;
    for (i, &n) in sizes.iter().enumerate() {
        let n = n.min(rest.len());
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&rest[..n]);
        rest = &rest[n..];
    }
    if !rest.is_empty() {
        out.push_str(sep);
        out.push_str(rest);
    }
    out
}

fn to_full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(0xFF10 + (c as u32 - '0' as u32)).unwrap_or(c),
            'X' => '\u{FF38}',
            '-' => '\u{FF0D}',
            _ => c,
        })
        .collect()
}

/// How a number is written: layout choice, separator, full-width or not, optional +86.
#[derive(Debug, Clone)]
struct Style {
    layout: usize,
    sep: &'static str,
    full_width: bool,
    country_prefix: Option<&'static str>,
}

fn style() -> impl Strategy<Value = Style> {
    (
        0usize..4,
        prop::sample::select(vec![" ", "-", " - "]),
        prop::bool::weighted(0.15),
        prop::option::weighted(
            0.3,
            prop::sample::select(vec!["+86 ", "+86-", "+86", "86", "0086"]),
        ),
    )
        .prop_map(|(layout, sep, full_width, country_prefix)| Style {
            layout,
            sep,
            full_width,
            country_prefix,
        })
}

fn write_mobile(digits: &str, style: &Style) -> String {
    let body = match style.layout {
        0 => digits.to_string(),
        1 => group(digits, &[3, 4, 4], style.sep),
        2 => group(digits, &[3, 8], style.sep),
        _ => group(digits, &[7, 4], style.sep),
    };
    let prefixed = match style.country_prefix {
        // A prefix without its own separator only works glued to a compact number.
        Some(p @ ("+86" | "86" | "0086")) if style.layout != 0 => format!("{p} {body}"),
        Some(p) => format!("{p}{body}"),
        None => body,
    };
    if style.full_width {
        to_full_width(&prefixed)
    } else {
        prefixed
    }
}

fn write_id(id: &str, style: &Style) -> String {
    let s = match style.layout {
        0 => id.to_string(),
        1 => group(id, &[6, 8, 4], style.sep),
        2 => group(id, &[6, 4, 4, 4], style.sep),
        _ => group(id, &[6, 12], style.sep),
    };
    if style.full_width {
        to_full_width(&s)
    } else {
        s
    }
}

fn write_card(card: &str, style: &Style) -> String {
    let s = match style.layout {
        0 | 1 => card.to_string(),
        2 => group(card, &[4, 4, 4, 4], style.sep),
        _ => group(card, &[6], style.sep),
    };
    if style.full_width {
        to_full_width(&s)
    } else {
        s
    }
}

/// Random Chinese/English filler text without digits, `@` or `*`.
fn filler() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "您好",
            "我的",
            "手机",
            "号码是",
            "谢谢",
            "请帮我查一下",
            "身份证",
            "卡号",
            "，",
            "。",
            "：",
            "！",
            "hello",
            "my number is",
            "please",
            "call me",
            "card",
            "ID",
            " ",
            "ok",
            "订单",
            "退款",
            "\n",
            "?",
            "(",
            ")",
            "😀",
            "ＡＢＣ",
            "é",
        ]),
        0..6,
    )
    .prop_map(|words| words.concat())
}

/// Text that may sit directly next to a number: never a Latin letter, digit, `*` or `@`.
fn boundary() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        " ", "：", "，", "是", "号", "(", ")", "\n", "。", "为", "「", "」",
    ])
}

#[derive(Debug, Clone)]
enum Secret {
    Mobile(String),
    Id(String),
    Card(String),
}

fn secret() -> impl Strategy<Value = (Secret, Style)> {
    (
        prop_oneof![
            mobile().prop_map(Secret::Mobile),
            id_number().prop_map(Secret::Id),
            bank_card().prop_map(Secret::Card),
        ],
        style(),
    )
}

fn write_secret(secret: &Secret, style: &Style) -> (String, String) {
    match secret {
        Secret::Mobile(d) => (d.clone(), write_mobile(d, style)),
        Secret::Id(d) => (d.clone(), write_id(d, style)),
        Secret::Card(d) => (d.clone(), write_card(d, style)),
    }
}

fn from_full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF10}'..='\u{FF19}' => char::from_u32(c as u32 - 0xFF10 + '0' as u32).unwrap_or(c),
            '\u{FF38}' => 'X',
            _ => c,
        })
        .collect()
}

fn assert_well_formed_spans(text: &str) {
    let spans = pii::find(text);
    for w in spans.windows(2) {
        assert!(
            w[0].end <= w[1].start,
            "overlapping or unsorted spans {spans:?} in {text:?}"
        );
    }
    for s in &spans {
        assert!(
            s.start < s.end && s.end <= text.len(),
            "bad span {s:?} in {text:?}"
        );
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
    }
}

/// Building blocks for adversarial strings: near-miss digit runs, masks, emails, separators.
fn adversarial() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        "[0-9]{1,20}",
        mobile(),
        id_number(),
        bank_card(),
        prop::sample::select(vec![
            "+86",
            "86",
            " ",
            "-",
            " - ",
            "*",
            "**",
            "***",
            "****",
            "@",
            ".",
            "com",
            "cn",
            "a",
            "ab",
            "X",
            "x",
            "中",
            "SF",
            "１３８",
            "　",
            "_",
            "+",
            "%",
            "Ｘ",
            "z***@",
            "138****5678",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(token, 0..24).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_is_idempotent_on_arbitrary_text(text in any::<String>()) {
        let once = pii::mask(&text).into_owned();
        let twice = pii::mask(&once).into_owned();
        prop_assert_eq!(&twice, &once);
        prop_assert!(!pii::contains_pii(&once));
        assert_well_formed_spans(&text);
    }

    #[test]
    fn idempotent_on_adversarial_text(text in adversarial()) {
        let once = pii::mask(&text).into_owned();
        let twice = pii::mask(&once).into_owned();
        prop_assert_eq!(&twice, &once, "input {:?}", text);
        prop_assert!(!pii::contains_pii(&once), "input {:?} masked {:?}", text, once);
        assert_well_formed_spans(&text);
    }

    #[test]
    fn idempotent_on_small_alphabet(text in "[0-9 \\-*@.acmX+８　－]{0,80}") {
        let once = pii::mask(&text).into_owned();
        prop_assert_eq!(pii::mask(&once).into_owned(), once.clone(), "input {:?}", text);
        prop_assert!(!pii::contains_pii(&once), "input {:?} masked {:?}", text, once);
    }

    #[test]
    fn generated_secrets_never_survive(
        pieces in prop::collection::vec((filler(), boundary(), secret(), boundary()), 1..4),
        tail in filler(),
    ) {
        let mut text = String::new();
        let mut secrets = Vec::new();
        for (before, b1, (secret, style), b2) in &pieces {
            let (raw, written) = write_secret(secret, style);
            text.push_str(before);
            text.push_str(b1);
            text.push_str(&written);
            text.push_str(b2);
            secrets.push(raw);
        }
        text.push_str(&tail);

        let masked = pii::mask(&text);
        prop_assert!(matches!(masked, Cow::Owned(_)));
        let plain = from_full_width(&masked);
        let compact: String = plain.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        for raw in &secrets {
            prop_assert!(!plain.contains(raw.as_str()), "{raw} survived in {plain:?} (from {text:?})");
            prop_assert!(!compact.contains(raw.as_str()), "{raw} survived in {compact:?} (from {text:?})");
        }
        prop_assert_eq!(pii::find(&text).len(), secrets.len(), "text {:?}", text);
        prop_assert_eq!(pii::mask(&masked).into_owned(), masked.into_owned());
    }

    #[test]
    fn generated_mobiles_keep_head_and_tail(digits in mobile(), before in filler(), after in filler()) {
        let text = format!("{before}，{digits}。{after}");
        let masked = pii::mask(&text);
        let expected = format!("{before}，{}****{}。{after}", &digits[..3], &digits[7..]);
        prop_assert_eq!(masked.as_ref(), expected.as_str());
    }

    #[test]
    fn generated_cards_mask_all_but_last_four(card in bank_card()) {
        let text = format!("卡号 {} 谢谢", group(&card, &[4, 4, 4, 4], " "));
        let spans = pii::find(&text);
        prop_assert_eq!(spans.len(), 1);
        let n = card.len();
        let expected = format!("卡号 {}{} 谢谢", "*".repeat(n - 4), &card[n - 4..]);
        let masked = pii::mask(&text);
        prop_assert_eq!(masked.as_ref(), expected.as_str());
    }

    #[test]
    fn off_by_one_ids_are_not_ids(first17 in prop::collection::vec(0u8..=9, 17)) {
        let check = id_check_char(&first17);
        let wrong = if check == '0' { '1' } else { '0' };
        let id = format!("{}{wrong}", digits_to_string(&first17));
        prop_assert!(!pii::id_checksum_valid(&id));
        prop_assert!(!pii::find(&id).iter().any(|s| s.kind == PiiKind::IdNumber));
    }

    #[test]
    fn order_numbers_are_never_pii(n in 10_000_000u64..1_000_000_000_000u64) {
        let digits = n.to_string();
        // 11-digit order numbers starting 1[3-9] are indistinguishable from mobile numbers.
        prop_assume!(!(digits.len() == 11 && matches!(digits.as_bytes()[1], b'3'..=b'9') && digits.starts_with('1')));
        let text = format!("订单号 {digits}，order #{digits}, 单号{digits}");
        prop_assert!(!pii::contains_pii(&text));
    }
}

// ---------------------------------------------------------------------------------------------
// Sentences
// ---------------------------------------------------------------------------------------------

#[test]
fn chinese_sentences() {
    let cases = [
        (
            "我的手机号是13812345678，谢谢",
            "我的手机号是138****5678，谢谢",
        ),
        ("手机13812345678谢谢", "手机138****5678谢谢"),
        ("13812345678是我的号码", "138****5678是我的号码"),
        ("号码：+86 139-1234-5678", "号码：+86 139****5678"),
        (
            "身份证号码为11010519491231002X",
            "身份证号码为**************002X",
        ),
        (
            "身份证 110105 19491231 002X 请核对",
            "身份证 **************002X 请核对",
        ),
        (
            "请退款到卡号6222 0212 3456 7890 128",
            "请退款到卡号***************0128",
        ),
        ("邮箱是zhang.san@example.com哦", "邮箱是z***@example.com哦"),
        ("全角号码１３８１２３４５６７８", "全角号码138****5678"),
    ];
    for (input, expected) in cases {
        assert_eq!(pii::mask(input), expected, "input {input:?}");
    }
}

#[test]
fn english_sentences() {
    let cases = [
        (
            "Please call me at 138 1234 5678.",
            "Please call me at 138****5678.",
        ),
        ("My number: +8613812345678", "My number: +86138****5678"),
        (
            "ID 11010519491231002x, thanks",
            "ID **************002X, thanks",
        ),
        ("Card: 4111-1111-1111-1111", "Card: ************1111"),
        (
            "Email me at John.Doe+cs@mail.example.co.uk!",
            "Email me at J***@mail.example.co.uk!",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(pii::mask(input), expected, "input {input:?}");
    }
}

#[test]
fn several_kinds_in_one_sentence() {
    let text = "客户李四（13912345678 / li.si@corp.cn）身份证11010519491231002X，\
                绑定卡 6222-0212-3456-7890-128，订单号 2024113051，快递 SF1234567890。";
    let kinds: Vec<PiiKind> = pii::find(text).into_iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            PiiKind::Mobile,
            PiiKind::Email,
            PiiKind::IdNumber,
            PiiKind::BankCard
        ]
    );
    assert_eq!(
        pii::mask(text),
        "客户李四（139****5678 / l***@corp.cn）身份证**************002X，\
         绑定卡 ***************0128，订单号 2024113051，快递 SF1234567890。"
    );
}

#[test]
fn left_alone() {
    for text in [
        "订单号 2024113051",
        "订单号：202411305123",
        "快递单号SF1234567890",
        "tracking SF13812345678",
        "身份证 110105194912310021",
        "卡号 6222 0212 3456 7890 127",
        "long number 1381234567812345678901234",
        "price 138.00, qty 12",
    ] {
        assert!(!pii::contains_pii(text), "{text:?}");
        assert!(matches!(pii::mask(text), Cow::Borrowed(_)), "{text:?}");
    }
}

#[test]
fn at_start_and_end_of_string() {
    assert_eq!(pii::mask("13812345678"), "138****5678");
    assert_eq!(pii::mask("13812345678 hi"), "138****5678 hi");
    assert_eq!(pii::mask("hi 13812345678"), "hi 138****5678");
    assert_eq!(pii::mask("a@b.cn"), "a***@b.cn");
    assert_eq!(pii::mask("11010519491231002X"), "**************002X");
}
