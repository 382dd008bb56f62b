//! The data of the PII audit (`pii_audit.rs`): the originals typed in every field, zh and en,
//! and the needles searched for in every output.

#![allow(dead_code)]

use switchboard_schemas::*;

pub const T0: i64 = 1_764_000_000_000;

/// An 18-digit mainland ID number: the 17 given digits and their ISO 7064 check character.
pub fn id_number(first17: &str) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = first17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).expect("digit") * w)
        .sum();
    format!("{first17}{}", CHECK[(sum % 11) as usize] as char)
}

/// A card number: the given digits and their Luhn check digit.
pub fn luhn_card(body: &str) -> String {
    let sum: u32 = body
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).expect("digit");
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Groups `digits` with `sep` after the given group lengths.
pub fn grouped(digits: &str, groups: &[usize], sep: &str) -> String {
    let mut out = Vec::new();
    let mut at = 0;
    for g in groups {
        out.push(&digits[at..(at + g).min(digits.len())]);
        at += g;
    }
    if at < digits.len() {
        out.push(&digits[at..]);
    }
    out.join(sep)
}

/// The audit data: valid turns, malformed records, and every PII original they carry.
pub struct AuditData {
    /// (dialogue, user_id, locale, text)
    pub turns: Vec<(String, String, Locale, String)>,
    /// (key, raw value)
    pub malformed: Vec<(String, String)>,
    pub originals: Vec<String>,
}

pub fn audit_data() -> AuditData {
    let id_a = id_number("11010119900307123");
    let id_b = id_number("44030619851212003");
    let id_c = id_number("32010219780615441");
    let card_a = luhn_card("622202123456789012"); // 19 digits (UnionPay)
    let card_b = luhn_card("411111111111111"); // 16 digits (Visa)
    let card_c = luhn_card("621700001234567"); // 16 digits
    let card_d = luhn_card("62148300123456789"); // 18 digits
    let mobiles = [
        "13812345678".to_string(),
        "139 8765 4321".to_string(),
        "+86-159-0000-1111".to_string(),
        "186-1234-5678".to_string(),
        "+86 177 0011 2233".to_string(),
        "１３７００１３７０００".to_string(),
        "(+86)15012345678".to_string(),
        // Mixed separators, dots and brackets: leaked before operators/src/pii.rs took them.
        "135 2468-1357".to_string(),
        "158.8888.6666".to_string(),
        "(136) 1357-2468".to_string(),
    ];
    let ids = [
        id_a.clone(),
        grouped(&id_b, &[6, 8], " "),
        grouped(&id_c, &[6, 8], "-"),
    ];
    let cards = [
        grouped(&card_a, &[4, 4, 4, 4], " "),
        grouped(&card_b, &[4, 4, 4], "-"),
        card_c.clone(),
        grouped(&card_d, &[6, 12], " "),
    ];
    let emails = [
        "zhang.san@example.com".to_string(),
        "li_si+shop@qq.com".to_string(),
        "John.Doe@Example.co.uk".to_string(),
        // A full-width at sign, as Chinese input methods type it.
        "wang.wu＠163.com".to_string(),
    ];

    let zh =
        |d: &str, user: &str, text: String| (d.to_string(), user.to_string(), Locale::ZhCn, text);
    let en =
        |d: &str, user: &str, text: String| (d.to_string(), user.to_string(), Locale::En, text);
    let turns = vec![
        zh(
            "d-audit-1",
            &mobiles[0],
            format!("我的手机号是{}，麻烦尽快回电", mobiles[0]),
        ),
        zh(
            "d-audit-1",
            "u-audit",
            format!("换个号码吧：{}，白天都能打通", mobiles[1]),
        ),
        zh(
            "d-audit-2",
            &emails[0],
            format!("身份证号{}，银行卡{}都被盗刷了", ids[0], cards[0]),
        ),
        zh(
            "d-audit-2",
            "u-audit",
            format!("退款退到{}这张卡吗？我的邮箱{}", cards[2], emails[0]),
        ),
        zh(
            "d-audit-3",
            &mobiles[5],
            format!("我的电话{}，身份证 {} 请核实", mobiles[5], ids[1]),
        ),
        zh(
            "d-audit-3",
            "u-audit",
            format!(
                "订单 2024113051 的发票寄到{}，联系{}",
                emails[1], mobiles[4]
            ),
        ),
        en(
            "d-audit-4",
            &emails[2],
            format!(
                "Hi, my number is {} and my email is {}, please call back.",
                mobiles[2], emails[2]
            ),
        ),
        en(
            "d-audit-4",
            "u-audit",
            format!("my card {} was charged twice, ID {}", cards[1], ids[2]),
        ),
        en(
            "d-audit-5",
            &mobiles[3],
            format!(
                "call me at {} or {} about the refund to {}",
                mobiles[3], mobiles[6], cards[3]
            ),
        ),
        en(
            "d-audit-5",
            &ids[0],
            "I want to talk to a human agent".to_string(),
        ),
        zh("d-audit-6", &cards[1], mobiles[1].clone()),
        zh(
            "d-audit-6",
            &emails[3],
            format!("联系方式 {} 或 {}，谢谢", mobiles[7], emails[3]),
        ),
        en(
            "d-audit-7",
            &mobiles[9],
            format!("reach me at {} or {} after 6pm", mobiles[9], mobiles[8]),
        ),
    ];
    let malformed = vec![
        ("d-audit-bad-1".to_string(), format!("not json, but my phone is {} and my card {}", mobiles[0], cards[1])),
        (
            "d-audit-bad-2".to_string(),
            serde_json::json!({
                "event_id": "0193a000-0000-7000-8000-00000000a0a1", "dialogue_id": "d-audit-bad-2", "schema_version": 1,
                "occurred_at": T0, "kind": "user_said", "client_msg_id": "m-bad-2", "user_id": emails[1],
                "locale": "zh-CN", "text": format!("身份证{}", ids[1]), "note": format!("call {}", mobiles[3]),
            })
            .to_string(),
        ),
        (
            "d-audit-bad-3".to_string(),
            serde_json::json!({
                "event_id": "0193a000-0000-7000-8000-00000000a0a2", "dialogue_id": "d-audit-bad-3", "schema_version": 1,
                "occurred_at": T0, "kind": "user_said", "client_msg_id": "m-bad-3", "user_id": mobiles[2],
                "locale": "en", "text": format!("{} {} {}", "x".repeat(5000), cards[0], emails[2]),
            })
            .to_string(),
        ),
        (
            "d-audit-bad-4".to_string(),
            serde_json::json!({
                "event_id": "0193a000-0000-7000-8000-00000000a0a3", "dialogue_id": "d-audit-bad-4", "schema_version": 9,
                "occurred_at": T0, "kind": "user_said", "client_msg_id": "m-bad-4", "user_id": emails[0],
                "locale": "zh-CN", "text": format!("卡号{}，手机{}", cards[3], mobiles[4]),
            })
            .to_string(),
        ),
        ("d-audit-bad-5".to_string(), format!("{{\"kind\":\"user_said\",\"text\":\"{} {}", ids[2], emails[1])),
    ];
    let mut originals: Vec<String> = Vec::new();
    originals.extend(mobiles.iter().cloned());
    originals.extend(ids.iter().cloned());
    originals.extend(cards.iter().cloned());
    originals.extend(emails.iter().cloned());
    AuditData {
        turns,
        malformed,
        originals,
    }
}

/// Each original as typed, without separators, and (for numbers) its bare digits without a +86.
pub fn needles_for(originals: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for o in originals {
        out.push(o.clone());
        out.push(o.to_lowercase());
        let compact: String = o
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        out.push(compact.clone());
        if let Some(national) = compact.strip_prefix("+86") {
            out.push(national.to_string());
        }
        // Full-width digits, also as ASCII.
        let ascii: String = compact
            .chars()
            .map(|c| {
                if ('０'..='９').contains(&c) {
                    char::from(b'0' + (c as u32 - '０' as u32) as u8)
                } else {
                    c
                }
            })
            .collect();
        out.push(ascii);
    }
    out.sort();
    out.dedup();
    out
}

/// The needles found in `haystack`, with a little context.
pub fn leaks(haystack: &str, needles: &[String]) -> Vec<String> {
    needles
        .iter()
        .filter_map(|n| {
            haystack.find(n.as_str()).map(|at| {
                let start = haystack[..at]
                    .char_indices()
                    .rev()
                    .nth(40)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                let end = (at + n.len() + 40).min(haystack.len());
                let end = (end..=haystack.len())
                    .find(|i| haystack.is_char_boundary(*i))
                    .unwrap_or(haystack.len());
                format!("{n:?} in …{}…", &haystack[start..end])
            })
        })
        .collect()
}

pub fn user_said(i: usize, turn: &(String, String, Locale, String)) -> Event {
    let (dialogue, user, locale, text) = turn;
    Event::new(
        dialogue.clone(),
        T0 + (i as i64) * 1_000,
        EventBody::UserSaid(UserSaid {
            client_msg_id: format!("m-audit-{i}"),
            user_id: user.clone(),
            locale: *locale,
            text: text.clone(),
        }),
    )
}
