//! Regression (found with the `decode_event` fuzz target's round-trip check): a confidence or
//! score beyond f32's range (`1e39`) used to decode as infinity, and the event then encoded with
//! `null` in its place, which no longer decodes. The decoder now refuses such a number with a
//! typed error; numbers within range still round-trip exactly.

use std::path::Path;
use switchboard_schemas::{decode, encode, DecodeError};

fn regression_input(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn an_out_of_range_confidence_is_an_invalid_field() {
    let input = regression_input("decode_event-confidence-beyond-f32.json");
    match decode(&input) {
        Err(DecodeError::InvalidField { kind, message }) => {
            assert_eq!(kind, "intent_recognized");
            assert!(message.contains("confidence"), "{message}");
        }
        other => panic!("expected an invalid-field error, got {other:?}"),
    }
}

#[test]
fn every_float_field_is_checked_and_in_range_values_still_round_trip() {
    let text =
        String::from_utf8(regression_input("decode_event-confidence-beyond-f32.json")).unwrap();
    for huge in ["1e39", "-1e39", "3.5e38"] {
        let bad = text.replace("1e39", huge);
        assert!(
            matches!(
                decode(bad.as_bytes()),
                Err(DecodeError::InvalidField { .. })
            ),
            "{huge}"
        );
    }
    let answer = r#"{"event_id":"0193a000-0000-8eeb-bb31-a66b552aa31e","dialogue_id":"d","schema_version":1,"occurred_at":1,"kind":"answer_generated","in_reply_to":"0193a000-0000-7000-8000-0000000032c9","client_msg_id":"m-1","text":"ok","intent":"h","confidence":1e40,"latency_ms":3}"#;
    assert!(matches!(
        decode(answer.as_bytes()),
        Err(DecodeError::InvalidField { .. })
    ));
    let retrieved = r#"{"event_id":"0193a000-0000-8eeb-bb31-a66b552aa31e","dialogue_id":"d","schema_version":1,"occurred_at":1,"kind":"knowledge_retrieved","in_reply_to":"0193a000-0000-7000-8000-0000000032c9","client_msg_id":"m-1","entry_id":null,"score":-1e300,"kb_version":"v"}"#;
    assert!(matches!(
        decode(retrieved.as_bytes()),
        Err(DecodeError::InvalidField { .. })
    ));
    for fine in ["3.4e38", "1e-50", "0.9537", "-0.0"] {
        let ok = text.replace("1e39", fine);
        let event = decode(ok.as_bytes()).unwrap_or_else(|e| panic!("{fine}: {e}"));
        assert_eq!(decode(&encode(&event)).unwrap(), event, "{fine}");
    }
}
