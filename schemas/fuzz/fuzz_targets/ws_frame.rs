//! Fuzzes the gateway's handling of a client text frame: `parse_client_frame` (as the connection
//! calls it, after the frame-size check) must refuse with a short error frame or accept; an
//! accepted frame must give the `UserSaid` event the gateway produces, and that event must pass
//! the topology's strict decoder unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_gateway::protocol::{parse_client_frame, ClientFrame};
use switchboard_gateway::Limits;
use switchboard_schemas::{decode, encode, Event, EventBody, Locale, UserSaid};

/// The longest refusal message; a longer one would be echoing the frame.
const MAX_MESSAGE_BYTES: usize = 200;

fn user_said(
    dialogue_id: &str,
    user_id: &str,
    locale: Locale,
    client_msg_id: &str,
    text: &str,
) -> Event {
    Event::new(
        dialogue_id,
        1_764_000_000_000,
        EventBody::UserSaid(UserSaid {
            client_msg_id: client_msg_id.to_string(),
            user_id: user_id.to_string(),
            locale,
            text: text.to_string(),
        }),
    )
}

fn assert_topology_accepts(event: &Event) {
    let decoded =
        decode(&encode(event)).expect("an event made from an accepted frame decodes strictly");
    assert_eq!(&decoded, event);
}

fuzz_target!(|data: &[u8]| {
    // The WebSocket layer hands over text frames only as valid UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    if text.len() > limits.max_frame_bytes {
        return;
    }
    // The most the configuration allows (`SWITCHBOARD_GATEWAY_MAX_TEXT_CHARS`), the hardest case
    // for the decoder downstream.
    let max_text_chars = switchboard_schemas::MAX_TEXT_CHARS;
    match parse_client_frame(text, max_text_chars) {
        Err(e) => {
            assert!(
                e.message.len() <= MAX_MESSAGE_BYTES,
                "refusal message too long: {}",
                e.message
            );
            let frame: serde_json::Value =
                serde_json::from_str(&e.to_frame().to_json()).expect("an error frame is JSON");
            assert_eq!(frame["type"], "error");
        }
        Ok(ClientFrame::Hello(hello)) => {
            // A resumed dialogue keeps the id the client named; the event carries it.
            let dialogue_id = hello
                .dialogue_id
                .as_deref()
                .unwrap_or("0193a7e0-0000-7000-8000-000000000000");
            assert_topology_accepts(&user_said(
                dialogue_id,
                &hello.user_id,
                hello.locale,
                "m-1",
                "hello",
            ));
        }
        Ok(ClientFrame::Say(say)) => {
            assert!(say.text.chars().count() <= max_text_chars);
            let event = user_said("d-1", "u-1", Locale::ZhCn, &say.client_msg_id, &say.text);
            assert_topology_accepts(&event);
        }
    }
});
