//! The WebSocket edge: accepts user turns, publishes `UserSaid` to Kafka, routes `bot.said`
//! answers back to the connection holding the dialogue, and serves the chat page and console.
