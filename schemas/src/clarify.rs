//! Fixed texts of the bot: the clarifying questions it answers with when it did not understand a
//! turn (retrieval found no good answer), and the apology after a wait for an agent that timed
//! out. The operators render them; the operations console counts a turn answered with a
//! clarifying question as unresolved, so both must use the very same texts.

/// The clarifying question in zh-CN.
pub const CLARIFY_ZH: &str = "抱歉，我还没完全理解您的问题。能再具体描述一下吗？比如涉及哪个订单、商品或业务。";

/// The clarifying question in English.
pub const CLARIFY_EN: &str =
    "Sorry, I'm not sure I understood. Could you tell me a bit more, for example which order, product or service this is about?";

/// The apology in zh-CN when a dialogue waited for a human agent longer than the wait timeout
/// and went back to the bot (`on_wait_timeout: back_to_bot`). The bot's next answer starts with
/// it; a gateway may show it when the dialogue comes back to the bot for that reason.
pub const WAIT_APOLOGY_ZH: &str = "抱歉让您久等了，暂时没有人工客服可以接待，先由我继续为您服务。";

/// The apology in English (see [`WAIT_APOLOGY_ZH`]).
pub const WAIT_APOLOGY_EN: &str =
    "Sorry to keep you waiting: no human agent is free right now, so I'll carry on helping you.";
