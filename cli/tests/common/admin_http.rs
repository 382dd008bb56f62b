//! The admin listener from a test: an account in a users file, a login, and plain HTTP/1.1
//! requests carrying the session cookie or a bearer token (blocking, for tests that drive the
//! `switchboard` binary).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The account the tests log in with (role admin).
pub const USER: &str = "ops";
/// Its password.
pub const PASSWORD: &str = "integration-test-password";

/// A users file in `dir` holding [`USER`].
pub fn users_file(dir: &Path) -> PathBuf {
    let path = dir.join("users.json");
    switchboard_gateway::accounts::Accounts::load(&path)
        .and_then(|mut a| a.upsert(USER, switchboard_gateway::accounts::Role::Admin, PASSWORD))
        .expect("a test account in the users file");
    path
}

/// One request: the status and the whole response (head and body), or `None` when nothing
/// answers.
pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1).and_then(|c| c.parse().ok())?;
    Some((status, response))
}

/// Logs in as [`USER`]; the `Cookie` header value, or `None` while the listener is not up.
pub fn login(addr: &str) -> Option<String> {
    login_as(addr, USER, PASSWORD)
}

/// Logs in as `user` (a password without `&`, `+` or `%`).
pub fn login_as(addr: &str, user: &str, password: &str) -> Option<String> {
    let body = format!("username={user}&password={}", password.replace(' ', "+"));
    let (status, response) =
        request(addr, "POST", "/login", &[("Content-Type", "application/x-www-form-urlencoded")], &body)?;
    assert_eq!(status, 303, "the test account must log in: {response}");
    response
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
}

/// A GET with the session `cookie`: the body of a 200 answer.
pub fn get(addr: &str, cookie: &str, path: &str) -> Option<String> {
    let (status, response) = request(addr, "GET", path, &[("Cookie", cookie)], "")?;
    (status == 200).then(|| response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}
