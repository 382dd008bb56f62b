//! End to end in a real browser: headless Chromium, driven through chromedriver (WebDriver),
//! talks to the whole system — `switchboard run` (the topology with the real intent model and
//! knowledge base) and `switchboard gateway` — on this test's own topics and its own ClickHouse
//! database, against the dev broker and ClickHouse.
//!
//! The steps: open `/`, type 我要退货 and send it, wait for the answer bubble (the return answer
//! asks for the order number), open its debug drawer (intent and confidence shown); open
//! `/console`, wait until the turn is counted and its intent is in the intent distribution, then
//! open the dialogue's trace. Each step leaves a PNG screenshot in
//! `$SWITCHBOARD_STATE/artifacts/browser/` (the paths are printed).
//!
//! Needs Debian's `chromium` and `chromium-driver` (deploy/dev/lib.sh `install_chromium`, which
//! deploy/dev/test.sh runs): without them the test fails and says so; it never skips.

mod common;
#[path = "common/browser.rs"]
mod harness;

use harness::*;
use serde_json::{json, Value};
use std::time::Duration;

/// The utterance typed into the chat page, and what its answer must contain: the return
/// answer needs an order id, so the bot asks for it.
const UTTERANCE: &str = "我要退货";
const EXPECTED_INTENT: &str = "return_goods";
const ANSWER_ASKS_FOR: &str = "订单号";

/// The console account this test logs in with.
const CONSOLE_USER: &str = "e2e-viewer";
const CONSOLE_PASSWORD: &str = "browser test password";

/// The console polls its API every 5 s; ClickHouse has the rows within an epoch.
const CONSOLE_WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_answers_in_chromium_and_the_console_counts_the_turn() {
    let run_id = common::run_id();
    let accounts = [(CONSOLE_USER, switchboard_gateway::accounts::Role::Viewer, CONSOLE_PASSWORD)];
    let mut system = System::start("browser", &run_id, &accounts).await;
    let (gateway, admin_listen) = (system.public.clone(), system.admin.clone());
    let browser = system.browser().await;

    // 1. The chat page connects.
    browser.client.goto(&format!("http://{gateway}/?locale=zh-CN")).await.expect("open /");
    browser
        .wait_for(
            "the chat page to connect",
            STEP_WAIT,
            r##"return document.getElementById("status").className === "up";"##,
            &[],
        )
        .await;
    browser.screenshot("01-chat-connected").await;

    // 2. Type the question and send it; the answer bubble appears.
    browser.find("#text").await.send_keys(UTTERANCE).await.expect("type");
    browser.find("#send").await.click().await.expect("send");
    let answer = browser
        .wait_for(
            "the answer bubble",
            FIRST_ANSWER_WAIT,
            r##"var row = document.querySelector("#log .row.bot");
               if (!row) return null;
               var text = row.querySelector(".text");
               return { classes: row.className, text: (text || row).textContent };"##,
            &[],
        )
        .await;
    system.processes.check_alive(&system.work);
    let mine = browser.js(r##"return document.querySelector("#log .row.me .bubble").textContent;"##, &[]).await;
    assert!(mine.as_str().is_some_and(|t| t.starts_with(UTTERANCE)), "the user bubble shows the question: {mine}");
    assert!(
        answer["classes"].as_str().is_some_and(|c| c.split(' ').any(|c| c == "answer")),
        "an answer, not a handoff: {answer}"
    );
    let text = answer["text"].as_str().unwrap_or_default();
    assert!(text.contains(ANSWER_ASKS_FOR), "the return answer asks for the order number, got: {text}");
    browser.screenshot("02-chat-answer").await;

    // 3. The debug drawer shows intent and confidence.
    browser.find("#log .row.bot details.debug summary").await.click().await.expect("open the drawer");
    let intent = browser.find(r##"#log .row.bot dd[data-field="intent"]"##).await;
    assert!(intent.is_displayed().await.expect("displayed"), "the drawer is open");
    assert_eq!(intent.text().await.expect("intent text"), EXPECTED_INTENT);
    let confidence =
        browser.find(r##"#log .row.bot dd[data-field="confidence"]"##).await.text().await.expect("confidence");
    let confidence: f64 =
        confidence.trim().parse().unwrap_or_else(|_| panic!("a confidence number, got {confidence:?}"));
    assert!((0.75..=1.0).contains(&confidence), "an answered turn is above the handoff threshold: {confidence}");
    browser.screenshot("03-chat-debug-drawer").await;
    let dialogue = browser.js(r##"return JSON.parse(sessionStorage.getItem("sb.dialogue"));"##, &[]).await;
    let dialogue = dialogue.as_str().expect("the page keeps its dialogue id").to_string();

    // 4. The console is on the admin listener only, behind a login: it sends us to the login
    // page; we log in and land on the dashboard, which counts the turn and shows its intent.
    browser.client.goto(&format!("http://{gateway}/console")).await.expect("open /console on the public listener");
    let public = browser.js("return document.body ? document.body.textContent : '';", &[]).await;
    assert!(!public.as_str().unwrap_or_default().contains("operations"), "no console on the public listener: {public}");
    browser.client.goto(&format!("http://{admin_listen}/console")).await.expect("open /console");
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(url.path(), "/login", "an anonymous visit is sent to the login page: {url}");
    browser.find("#username").await.send_keys(CONSOLE_USER).await.expect("type the user");
    browser.find("#password").await.send_keys(CONSOLE_PASSWORD).await.expect("type the password");
    browser.screenshot("04a-console-login").await;
    browser.find("#submit").await.click().await.expect("log in");
    browser
        .wait_for(
            "the dashboard after the login",
            STEP_WAIT,
            r##"var who = document.getElementById("whoami");
               return (location.pathname === "/console" && who) ? who.textContent : null;"##,
            &[],
        )
        .await;
    let seen = browser
        .wait_for(
            "the console to count the turn",
            CONSOLE_WAIT,
            r##"var turns = Number(document.getElementById("c-turns").textContent);
               var chart = window.Chart && Chart.getChart(document.getElementById("chart-intents"));
               var intents = chart ? chart.data.labels.slice() : [];
               if (!(turns >= 1) || intents.indexOf(arguments[0]) < 0) return null;
               return { turns: turns, intents: intents };"##,
            &[json!(EXPECTED_INTENT)],
        )
        .await;
    assert_eq!(seen["turns"], 1, "exactly this test's turn in its own database: {seen}");
    assert_eq!(seen["intents"], json!([EXPECTED_INTENT]), "{seen}");
    browser.screenshot("04-console-summary").await;

    // 5. The dialogue's trace, opened from the recent-dialogues table.
    let row = browser
        .wait_for(
            "the dialogue in the recent-dialogues table",
            CONSOLE_WAIT,
            r##"var rows = document.querySelectorAll("#dialogues tbody tr.clickable");
               for (var i = 0; i < rows.length; i++) {
                 if (rows[i].cells[0].textContent === arguments[0]) { rows[i].id = "e2e-dialogue-row"; return true; }
               }
               return null;"##,
            &[json!(dialogue)],
        )
        .await;
    assert_eq!(row, true);
    browser.find("#e2e-dialogue-row").await.click().await.expect("open the trace");
    let trace = browser
        .wait_for(
            "the dialogue trace",
            STEP_WAIT,
            r##"var status = document.getElementById("trace-status").textContent;
               if (!/ events, /.test(status)) return null;
               var kinds = Array.prototype.map.call(document.querySelectorAll("#trace tbody .kind"), function (k) { return k.textContent; });
               if (kinds.indexOf("answer_generated") < 0) return null;
               document.getElementById("trace-panel").scrollIntoView({ block: "start" });
               return { status: status, kinds: kinds };"##,
            &[],
        )
        .await;
    let kinds: Vec<&str> = trace["kinds"].as_array().expect("kinds").iter().filter_map(Value::as_str).collect();
    assert_eq!(kinds.first(), Some(&"user_said"), "{trace}");
    for kind in ["intent_recognized", "knowledge_retrieved", "answer_generated"] {
        assert!(kinds.contains(&kind), "the trace shows {kind}: {trace}");
    }
    assert!(trace["status"].as_str().is_some_and(|s| s.ends_with("1 turns")), "{trace}");
    browser.screenshot("05-console-trace").await;

    // 6. Log out: back on the login page, and the console is closed again.
    browser.find("#logout").await.click().await.expect("log out");
    browser
        .wait_for("the login page after logout", STEP_WAIT, r##"return location.pathname === "/login" ? true : null;"##, &[])
        .await;
    browser.screenshot("06-logged-out").await;
    browser.client.goto(&format!("http://{admin_listen}/console")).await.expect("open /console again");
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(url.path(), "/login", "after logout the console needs a login again: {url}");

    browser.client.close().await.expect("close the browser");
    system.finish().await;
}
