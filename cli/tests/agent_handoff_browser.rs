//! A handoff that really hands off, in two real browser pages: a customer on the chat page (the
//! public listener) and an agent on the agent page (the admin listener, after a login), against
//! the whole system (`switchboard run` with the real models, `switchboard gateway`, the dev
//! broker and ClickHouse) on this test's own topics and database.
//!
//! The customer asks 转人工 and gets the handoff; the agent logs in, sees the dialogue waiting,
//! claims it; the customer sees the agent join; the agent writes and the customer sees it; the
//! customer's next message goes to the agent (no bot answer); the agent gives the dialogue back;
//! the bot answers the customer's next question. Screenshots of both pages go to
//! `$SWITCHBOARD_STATE/artifacts/agent-handoff/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`: without them the test fails and says so.

mod common;
#[path = "common/browser.rs"]
mod harness;

use harness::*;
use serde_json::{json, Value};

const AGENT: &str = "agent-li";
const AGENT_PASSWORD: &str = "agent page test password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_and_an_agent_in_two_pages() {
    let run_id = common::run_id();
    let accounts = [(AGENT, switchboard_gateway::accounts::Role::Agent, AGENT_PASSWORD)];
    let mut system = System::start("agent-handoff", &run_id, &accounts).await;
    let (public, admin_listen) = (system.public.clone(), system.admin.clone());
    let customer = system.browser().await;
    let agent = system.browser().await;

    // 1. The customer asks for a human and gets the handoff.
    customer.client.goto(&format!("http://{public}/?locale=zh-CN")).await.expect("open the chat page");
    customer.wait_for("the chat to connect", STEP_WAIT, r##"return document.getElementById("status").className === "up";"##, &[]).await;
    type_and_send(&customer, "#text", "#send", "转人工").await;
    customer
        .wait_for(
            "the handoff",
            FIRST_ANSWER_WAIT,
            r##"return document.querySelector("#log .row.handoff") ? true : null;"##,
            &[],
        )
        .await;
    let dialogue = customer.js(r##"return JSON.parse(sessionStorage.getItem("sb.dialogue"));"##, &[]).await;
    let dialogue = dialogue.as_str().expect("the page keeps its dialogue id").to_string();
    // No agent is online yet: the page says so and offers the bot instead of promising a human.
    customer
        .wait_for(
            "the no-agent notice and the offer of the bot",
            STEP_WAIT,
            r##"return document.getElementById("back-to-bot") ? true : null;"##,
            &[],
        )
        .await;
    customer.screenshot("01-customer-handoff").await;

    // 2. The agent logs in and sees it waiting.
    agent.client.goto(&format!("http://{admin_listen}/agent")).await.expect("open /agent");
    let url = agent.client.current_url().await.expect("url");
    assert_eq!(url.path(), "/login", "the agent page needs a login: {url}");
    agent.find("#username").await.send_keys(AGENT).await.expect("type the user");
    agent.find("#password").await.send_keys(AGENT_PASSWORD).await.expect("type the password");
    agent.find("#submit").await.click().await.expect("log in");
    let waiting = agent
        .wait_for(
            "the dialogue in the agent's queue",
            STEP_WAIT,
            r##"var item = document.querySelector('#waiting .item[data-dialogue="' + arguments[0] + '"]');
               if (!item) return null; item.id = "e2e-waiting"; return item.textContent;"##,
            &[json!(dialogue)],
        )
        .await;
    assert!(waiting.as_str().is_some_and(|t| t.contains("user_asked")), "the reason is shown: {waiting}");
    agent.screenshot("02-agent-queue").await;

    // 3. The agent claims it; the customer sees the agent join.
    agent.find("#e2e-waiting").await.click().await.expect("select the dialogue");
    agent.find("#claim").await.click().await.expect("claim");
    agent
        .wait_for("the claim to be granted", STEP_WAIT, r##"return document.getElementById("text").disabled ? null : true;"##, &[])
        .await;
    customer
        .wait_for(
            "the customer to see the agent join",
            STEP_WAIT,
            r##"var name = arguments[0];
               var n = Array.prototype.filter.call(document.querySelectorAll("#log .notice"), function (e) { return e.textContent.indexOf(name) >= 0; });
               return n.length ? true : null;"##,
            &[json!(AGENT)],
        )
        .await;

    // 4. The agent writes; the customer sees it.
    let greeting = "您好，我是人工客服小李，请问有什么可以帮您？";
    type_and_send(&agent, "#text", "#send", greeting).await;
    customer
        .wait_for(
            "the agent's message on the chat page",
            STEP_WAIT,
            r##"var rows = document.querySelectorAll("#log .row.agent .text");
               for (var i = 0; i < rows.length; i++) if (rows[i].textContent === arguments[0]) return true;
               return null;"##,
            &[json!(greeting)],
        )
        .await;
    customer.screenshot("03-customer-sees-the-agent").await;

    // 5. The customer's next message goes to the agent, not the bot.
    type_and_send(&customer, "#text", "#send", "我的快递到哪了").await;
    agent
        .wait_for(
            "the customer's message on the agent page",
            STEP_WAIT,
            r##"var lines = document.querySelectorAll('#transcript .line.user');
               for (var i = 0; i < lines.length; i++) if (lines[i].textContent.indexOf("我的快递到哪了") >= 0) return true;
               return null;"##,
            &[],
        )
        .await;
    let answers = customer.js(r##"return document.querySelectorAll("#log .row.answer").length;"##, &[]).await;
    assert_eq!(answers, json!(0), "no bot answer while the agent has the dialogue");
    agent.screenshot("04-agent-conversation").await;

    // 6. The agent gives it back; the bot answers the next question.
    agent.find("#return").await.click().await.expect("return to the bot");
    customer
        .wait_for(
            "the bot to come back",
            STEP_WAIT,
            r##"var n = Array.prototype.filter.call(document.querySelectorAll("#log .notice"), function (e) { return /机器人已回来/.test(e.textContent); });
               return n.length ? true : null;"##,
            &[],
        )
        .await;
    type_and_send(&customer, "#text", "#send", "我要退货").await;
    let answer = customer
        .wait_for(
            "the bot's answer after the agent left",
            FIRST_ANSWER_WAIT,
            r##"var rows = document.querySelectorAll("#log .row.answer .text");
               return rows.length ? rows[rows.length - 1].textContent : null;"##,
            &[],
        )
        .await;
    assert!(answer.as_str().is_some_and(|a| a.contains("订单号")), "the return answer asks for the order id: {answer}");
    customer.screenshot("05-customer-bot-back").await;
    agent.screenshot("06-agent-returned").await;

    customer.client.close().await.expect("close the customer's browser");
    agent.client.close().await.expect("close the agent's browser");
    system.finish().await;
}

/// Types `text` into `input` and clicks `button`.
async fn type_and_send(browser: &Browser, input: &str, button: &str, text: &str) {
    browser
        .wait_for(
            "the input to be enabled",
            STEP_WAIT,
            "var e = document.querySelector(arguments[0]); return e && !e.disabled ? true : null;",
            &[Value::from(input)],
        )
        .await;
    browser.find(input).await.send_keys(text).await.expect("type");
    browser.find(button).await.click().await.expect("send");
}
