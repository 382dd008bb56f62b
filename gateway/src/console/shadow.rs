//! Shadow reports on the admin listener (viewer and up, like the console): the reports that
//! `switchboard shadow --out DIR` wrote into subfolders of the reports folder
//! ([`AdminConfig::shadow_reports`](crate::admin::AdminConfig::shadow_reports)).
//!
//! | route | what |
//! |---|---|
//! | `GET /console/shadow` | the list: each report's turns, changed turns, deltas and gate verdict, newest first |
//! | `GET /console/shadow/{name}` | that report's `report.html` |
//! | `GET /console/shadow/{name}/report.json` | its `report.json` |
//!
//! A name is one folder name of letters, digits, `.`, `-` and `_` (never `..`); nothing
//! outside the reports folder is served. The report pages run no script: the page's policy
//! allows none.

use crate::admin::login::escape;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::path::PathBuf;
use std::sync::Arc;

/// The routes, serving the reports under `folder`.
pub fn router(folder: PathBuf) -> Router {
    Router::new()
        .route("/console/shadow", get(list))
        .route("/console/shadow/{name}", get(page))
        .route("/console/shadow/{name}/report.json", get(json))
        .with_state(Arc::new(folder))
}

const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn respond(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "no such shadow report").into_response()
}

/// Whether `name` can only be one folder directly under the reports folder.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn read(folder: &std::path::Path, name: &str, file: &str) -> Option<String> {
    if !valid_name(name) {
        return None;
    }
    std::fs::read_to_string(folder.join(name).join(file)).ok()
}

async fn page(State(folder): State<Arc<PathBuf>>, Path(name): Path<String>) -> Response {
    match read(&folder, &name, "report.html") {
        Some(html) => respond("text/html; charset=utf-8", html),
        None => not_found(),
    }
}

async fn json(State(folder): State<Arc<PathBuf>>, Path(name): Path<String>) -> Response {
    match read(&folder, &name, "report.json") {
        Some(text) => respond("application/json", text),
        None => not_found(),
    }
}

/// One line of the list.
struct Entry {
    name: String,
    modified: std::time::SystemTime,
    report: serde_json::Value,
}

fn entries(folder: &std::path::Path) -> Vec<Entry> {
    let Ok(dir) = std::fs::read_dir(folder) else { return Vec::new() };
    let mut found: Vec<Entry> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let file = e.path().join("report.json");
            let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok()?;
            let report = serde_json::from_str(&read(folder, &name, "report.json")?).ok()?;
            Some(Entry { name, modified, report })
        })
        .collect();
    found.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| a.name.cmp(&b.name)));
    found
}

async fn list(State(folder): State<Arc<PathBuf>>) -> Response {
    let folder_for_read = folder.clone();
    let found = tokio::task::spawn_blocking(move || entries(&folder_for_read)).await.unwrap_or_default();
    let mut rows = String::new();
    for e in &found {
        let r = &e.report;
        let failed = r["gates"].as_array().map(|g| g.iter().filter(|v| v["failed"] == true).count()).unwrap_or(0);
        let gates = match r["gates"].as_array().map(Vec::len).unwrap_or(0) {
            0 => "no gates".to_string(),
            n if failed == 0 => format!("{n} passed"),
            n => format!("{failed} of {n} FAILED"),
        };
        rows.push_str(&format!(
            "<tr><td><a href=\"/console/shadow/{name}\">{name}</a></td><td>{input}</td><td class=num>{turns}</td>\
             <td class=num>{changed}</td><td class=num>{handoff:+.2}pp</td><td>{gates}</td></tr>",
            name = escape(&e.name),
            input = escape(r["input"].as_str().unwrap_or("")),
            turns = r["turns"].as_u64().unwrap_or(0),
            changed = r["changed"]["turns"].as_u64().unwrap_or(0),
            handoff = r["rates"]["handoff_rate_delta_pp"].as_f64().unwrap_or(0.0),
            gates = escape(&gates),
        ));
    }
    let body = if found.is_empty() {
        format!(
            "<p>No report yet in {}. Write one with <code>switchboard shadow RECORDING --candidate-models DIR --out {}/NAME</code>.</p>",
            escape(&folder.display().to_string()),
            escape(&folder.display().to_string())
        )
    } else {
        format!("<table><tr><th>report</th><th>input</th><th>turns</th><th>changed</th><th>handoff rate</th><th>gates</th></tr>{rows}</table>")
    };
    respond(
        "text/html; charset=utf-8",
        format!(
            "<!doctype html><html><head><meta charset=utf-8><title>Shadow reports</title><style>body{{font-family:system-ui,sans-serif;margin:2em}}\
             table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}.num{{text-align:right}}</style></head>\
             <body><p><a href=\"/console\">← console</a></p><h1>Shadow reports</h1>{body}</body></html>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn only_plain_folder_names_are_served() {
        for good in ["2026-12-06-model-v2", "kb_reword.1", "a"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", ".", "..", "../etc", "a/b", "a\\b", "%2e%2e", "name with space", "ä"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
