//! The clarifying questions the bot answers with when it did not understand a turn (retrieval
//! found no good answer). The operators render them; the operations console counts a turn
//! answered with one of them as unresolved, so both must use the very same texts.

/// The clarifying question in zh-CN.
pub const CLARIFY_ZH: &str = "抱歉，我还没完全理解您的问题。能再具体描述一下吗？比如涉及哪个订单、商品或业务。";

/// The clarifying question in English.
pub const CLARIFY_EN: &str =
    "Sorry, I'm not sure I understood. Could you tell me a bit more, for example which order, product or service this is about?";
