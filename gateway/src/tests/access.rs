//! Who may see and do what, against a real gateway (public and admin listeners on 127.0.0.1:0)
//! with the in-memory broker: logins, sessions, CSRF, throttling, the public listener's 404s,
//! resume tokens across instances, and the per-address limits.

use super::{resume_token, start, Client, WAIT};
use crate::GatewayConfig;
use crate::accounts::{Accounts, Role};
use crate::tokens::ResumeKeys;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "a long enough password";

/// One HTTP/1.1 exchange: status, lower-cased head, body.
struct Reply {
    status: u16,
    head: String,
    raw_head: String,
    body: String,
}

impl Reply {
    /// The `sb_admin=…` pair of a `Set-Cookie`, if any.
    fn cookie(&self) -> Option<String> {
        self.raw_head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: sb_admin="))
            .and_then(|l| l.get("set-cookie: ".len()..))
            .and_then(|l| l.split(';').next())
            .map(str::to_string)
    }
}

async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.expect("reply in time").expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Reply { status, head: head.to_ascii_lowercase(), raw_head: head.to_string(), body: body.to_string() }
}

fn users(accounts: &[(&str, Role)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-access-{}", uuid::Uuid::now_v7()));
    let path = dir.join("users.json");
    let mut a = Accounts::load(&path).unwrap();
    for (name, role) in accounts {
        a.upsert(name, *role, PASSWORD).unwrap();
    }
    path
}

/// The test gateway's configuration with a console (its ClickHouse is never reached: only the
/// page is read).
fn config() -> GatewayConfig {
    let mut c = super::config();
    c.clickhouse = Some(switchboard_schemas::settings::ClickHouseSettings {
        url: "http://127.0.0.1:1".into(),
        database: "switchboard".into(),
        user: "default".into(),
        password: None,
    });
    c
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

async fn login(admin: SocketAddr, user: &str, password: &str) -> Reply {
    http(admin, "POST", "/login", &[FORM], &format!("username={user}&password={}", password.replace(' ', "+"))).await
}

/// Logs in and returns the cookie pair and the CSRF token.
async fn session(admin: SocketAddr, user: &str) -> (String, String) {
    let r = login(admin, user, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.head);
    let cookie = r.cookie().expect("a session cookie");
    let page = http(admin, "GET", "/console", &[("Cookie", &cookie)], "").await;
    assert_eq!(page.status, 200, "{}", page.head);
    let csrf = page.body.split("name=\"csrf-token\" content=\"").nth(1).and_then(|t| t.split('"').next()).expect("csrf meta");
    (cookie, csrf.to_string())
}

#[tokio::test]
async fn the_public_listener_serves_only_the_chat() {
    let gw = start(config()).await;
    for path in ["/console", "/console/api/summary", "/agent", "/agent/ws", "/metrics", "/login"] {
        assert_eq!(http(gw.addr, "GET", path, &[], "").await.status, 404, "{path} on the public listener");
    }
    assert_eq!(http(gw.addr, "GET", "/", &[], "").await.status, 200);
    assert_eq!(http(gw.addr, "GET", "/healthz", &[], "").await.status, 200);
}

#[tokio::test]
async fn admin_routes_need_a_login_and_the_right_role() {
    let mut c = config();
    c.admin.users_file = Some(users(&[("vera", Role::Viewer), ("alex", Role::Agent)]));
    let gw = start(c).await;
    for path in ["/console", "/agent"] {
        let r = http(gw.admin, "GET", path, &[], "").await;
        assert_eq!(r.status, 303, "{path}");
        assert!(r.head.contains(&format!("location: /login?next={path}")), "{}", r.head);
    }
    for path in ["/console/api/summary", "/metrics"] {
        let r = http(gw.admin, "GET", path, &[], "").await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.body.contains("unauthorized"), "{}", r.body);
    }
    assert_eq!(login(gw.admin, "vera", "wrong password!!").await.status, 401);
    let r = login(gw.admin, "vera", PASSWORD).await;
    assert_eq!(r.status, 303);
    let set = r.head.lines().find(|l| l.starts_with("set-cookie: sb_admin=")).expect("cookie").to_string();
    assert!(set.contains("httponly") && set.contains("samesite=strict") && set.contains("path=/"), "{set}");
    let (cookie, csrf) = session(gw.admin, "vera").await;
    let page = http(gw.admin, "GET", "/console", &[("Cookie", &cookie)], "").await;
    assert!(page.body.contains("vera · viewer") && page.body.contains(&csrf));
    assert_eq!(http(gw.admin, "GET", "/metrics", &[("Cookie", &cookie)], "").await.status, 200);
    let r = http(gw.admin, "GET", "/agent", &[("Cookie", &cookie)], "").await;
    assert_eq!(r.status, 403, "a viewer is not an agent");
    let (agent_cookie, _) = session(gw.admin, "alex").await;
    assert_eq!(http(gw.admin, "GET", "/agent", &[("Cookie", &agent_cookie)], "").await.status, 200);
    // A forged cookie is no session.
    let forged = http(gw.admin, "GET", "/metrics", &[("Cookie", "sb_admin=AAAAAAAAAAAAAAAAAAAAAA")], "").await;
    assert_eq!(forged.status, 401);
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_revokes_the_session() {
    let mut c = config();
    c.admin.users_file = Some(users(&[("vera", Role::Viewer)]));
    let gw = start(c).await;
    let (cookie, csrf) = session(gw.admin, "vera").await;
    let r = http(gw.admin, "POST", "/logout", &[("Cookie", &cookie), FORM], "").await;
    assert_eq!(r.status, 403, "logout without the CSRF token");
    let r = http(gw.admin, "POST", "/logout", &[("Cookie", &cookie), FORM], "csrf=not-the-token").await;
    assert_eq!(r.status, 403, "logout with a wrong CSRF token");
    assert_eq!(http(gw.admin, "GET", "/metrics", &[("Cookie", &cookie)], "").await.status, 200, "still logged in");
    let r = http(gw.admin, "POST", "/logout", &[("Cookie", &cookie), FORM], &format!("csrf={csrf}")).await;
    assert_eq!(r.status, 303);
    assert!(r.head.contains("location: /login"), "{}", r.head);
    // The old cookie, replayed, opens nothing: the session is gone server-side.
    assert_eq!(http(gw.admin, "GET", "/metrics", &[("Cookie", &cookie)], "").await.status, 401);
}

#[tokio::test]
async fn a_removed_account_loses_its_session_at_once() {
    let mut c = config();
    let file = users(&[("vera", Role::Viewer), ("sam", Role::Admin)]);
    c.admin.users_file = Some(file.clone());
    let gw = start(c).await;
    let (cookie, _) = session(gw.admin, "vera").await;
    // Rewrite the file without vera (a newer modification time).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let list: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let kept: Vec<_> = list.into_iter().filter(|a| a["name"] != "vera").collect();
    std::fs::write(&file, serde_json::to_string(&kept).unwrap()).unwrap();
    assert_eq!(http(gw.admin, "GET", "/metrics", &[("Cookie", &cookie)], "").await.status, 401);
}

#[tokio::test]
async fn login_attempts_are_throttled_per_account() {
    let mut c = config();
    c.admin.users_file = Some(users(&[("vera", Role::Viewer)]));
    let gw = start(c).await;
    for _ in 0..5 {
        assert_eq!(login(gw.admin, "vera", "guess guess guess").await.status, 401);
    }
    let r = login(gw.admin, "vera", PASSWORD).await;
    assert_eq!(r.status, 429, "the right password is refused too while throttled");
    assert!(r.head.contains("retry-after: 60"), "{}", r.head);
    let m = gw.metrics.render();
    assert!(m.contains(r#"switchboard_gateway_admin_logins_total{outcome="throttled"} 1"#), "{m}");
}

#[tokio::test]
async fn a_metrics_token_opens_only_metrics() {
    let mut c = config();
    c.admin.metrics_token = Some(crate::Secret::new(b"scrape-token-0123456789".to_vec()));
    let gw = start(c).await;
    let bearer = [("Authorization", "Bearer scrape-token-0123456789")];
    assert_eq!(http(gw.admin, "GET", "/metrics", &bearer, "").await.status, 200);
    assert_eq!(http(gw.admin, "GET", "/console", &bearer, "").await.status, 303);
    let wrong = [("Authorization", "Bearer scrape-token-0123456788")];
    assert_eq!(http(gw.admin, "GET", "/metrics", &wrong, "").await.status, 401);
}

fn shared_keys() -> ResumeKeys {
    ResumeKeys::parse("k1:a-shared-resume-key-of-at-least-32-bytes!", Duration::from_secs(600)).unwrap()
}

#[tokio::test]
async fn a_dialogue_resumes_on_another_instance_only_with_its_own_token() {
    let mut ca = config();
    ca.resume_keys = shared_keys();
    let mut cb = config();
    cb.resume_keys = shared_keys();
    let a = start(ca).await;
    let b = start(cb).await;
    let mut alice = Client::connect(a.addr).await;
    let d = alice.hello("alice", None).await;
    let mut bob = Client::connect(a.addr).await;
    let other = bob.hello("bob", None).await;
    let refused = [
        json!({"type":"hello","user_id":"alice","dialogue_id":d}),
        json!({"type":"hello","user_id":"alice","dialogue_id":d,"resume_token":"eyJhbGciOiJIUzI1NiJ9.e30.forged"}),
        json!({"type":"hello","user_id":"alice","dialogue_id":d,"resume_token":resume_token(&other)}),
        json!({"type":"hello","user_id":"bob","dialogue_id":d,"resume_token":resume_token(&d)}),
        json!({"type":"hello","user_id":"alice","dialogue_id":d,
               "resume_token":ResumeKeys::parse("k1:somebody-elses-key-somebody-elses-key!!", Duration::from_secs(60))
                   .unwrap().issue(&d, "alice", std::time::SystemTime::now())}),
        json!({"type":"hello","user_id":"alice","dialogue_id":d,
               "resume_token":shared_keys().issue(&d, "alice", std::time::SystemTime::now() - Duration::from_secs(3600))}),
    ];
    for hello in refused {
        let mut c = Client::connect(b.addr).await;
        c.send(hello.clone()).await;
        c.expect_error("unauthorized").await;
        c.expect_close().await;
    }
    // Its own token resumes it on the second instance, which knew nothing of it.
    let mut again = Client::connect(b.addr).await;
    assert_eq!(again.hello("alice", Some(&d)).await, d);
    // A token signed by the per-instance key of a third gateway is refused.
    let c = start(config()).await;
    let mut elsewhere = Client::connect(c.addr).await;
    elsewhere.send(json!({"type":"hello","user_id":"alice","dialogue_id":d,"resume_token":resume_token(&d)})).await;
    elsewhere.expect_error("unauthorized").await;
}

#[tokio::test]
async fn one_address_cannot_take_every_connection_or_hello() {
    let mut c = config();
    c.limits.max_connections_per_address = 2;
    let gw = start(c).await;
    let mut first = Client::connect(gw.addr).await;
    let _second = Client::connect(gw.addr).await;
    let mut third = Client::connect(gw.addr).await;
    third.expect_error("server_busy").await;
    third.expect_close().await;
    let _ = first.hello("u", None).await;

    let mut c = config();
    c.limits.hello_rate_per_address = 0.2; // bursts of one
    let gw = start(c).await;
    let mut a = Client::connect(gw.addr).await;
    let _ = a.hello("u1", None).await;
    let mut b = Client::connect(gw.addr).await;
    b.send(json!({"type":"hello","user_id":"u2"})).await;
    b.expect_error("rate_limited").await;
}

#[tokio::test]
async fn pings_count_against_the_frame_rate() {
    let mut c = config();
    c.limits.rate_per_sec = 0.5;
    c.limits.rate_burst = 3;
    let gw = start(c).await;
    let mut client = Client::connect(gw.addr).await;
    for _ in 0..5 {
        client.send_raw(Message::Ping(vec![1].into())).await;
    }
    client.expect_error("rate_limited").await;
}

#[tokio::test]
async fn shadow_reports_are_for_logged_in_viewers_and_nothing_outside_their_folder_is_served() {
    let reports = std::env::temp_dir().join(format!("sb-shadow-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(reports.join("kb-reword")).unwrap();
    std::fs::write(reports.join("kb-reword/report.html"), "<!doctype html><h1>Shadow report</h1>").unwrap();
    std::fs::write(
        reports.join("kb-reword/report.json"),
        r#"{"input":"<slot_filling>","turns":9,"changed":{"turns":2},"rates":{"handoff_rate_delta_pp":0.5},"gates":[{"failed":true}]}"#,
    )
    .unwrap();
    std::fs::write(reports.join("secret.txt"), "not a report").unwrap();
    let mut c = config();
    c.admin.users_file = Some(users(&[("vera", Role::Viewer)]));
    c.admin.shadow_reports = Some(reports.clone());
    let gw = start(c).await;
    assert_eq!(http(gw.admin, "GET", "/console/shadow", &[], "").await.status, 303, "a page: to the login");
    assert_eq!(http(gw.admin, "GET", "/console/shadow/kb-reword/report.json", &[], "").await.status, 401);
    assert_eq!(http(gw.addr, "GET", "/console/shadow", &[], "").await.status, 404, "never on the public listener");
    let (cookie, _) = session(gw.admin, "vera").await;
    let console = http(gw.admin, "GET", "/console", &[("Cookie", &cookie)], "").await;
    assert!(console.body.contains("href=\"/console/shadow\""), "the console links the reports");
    let list = http(gw.admin, "GET", "/console/shadow", &[("Cookie", &cookie)], "").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("href=\"/console/shadow/kb-reword\"") && list.body.contains("1 of 1 FAILED"), "{}", list.body);
    assert!(list.body.contains("&lt;slot_filling&gt;") && !list.body.contains("<slot_filling>"), "escaped: {}", list.body);
    let page = http(gw.admin, "GET", "/console/shadow/kb-reword", &[("Cookie", &cookie)], "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Shadow report") && page.head.contains("content-security-policy: default-src 'none'"), "{}", page.head);
    let json = http(gw.admin, "GET", "/console/shadow/kb-reword/report.json", &[("Cookie", &cookie)], "").await;
    assert!(json.status == 200 && json.head.contains("application/json") && json.body.contains("\"turns\":9"));
    for path in ["/console/shadow/..", "/console/shadow/%2e%2e", "/console/shadow/secret.txt", "/console/shadow/..%2fsecret.txt", "/console/shadow/missing"] {
        let r = http(gw.admin, "GET", path, &[("Cookie", &cookie)], "").await;
        assert!(r.status == 404 || r.status == 400, "{path}: {}", r.status);
        assert!(!r.body.contains("not a report"), "{path}");
    }
    let _ = std::fs::remove_dir_all(&reports);
}
