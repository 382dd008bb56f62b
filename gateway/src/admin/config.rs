//! The admin listener's configuration (`SWITCHBOARD_GATEWAY_ADMIN_*`).

use crate::config::{ConfigError, Secret};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the admin listener listens and how it keeps logins.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// Address of the admin listener (`SWITCHBOARD_GATEWAY_ADMIN_LISTEN`, default
    /// `127.0.0.1:8081`; `off` serves no admin listener).
    pub listen: Option<SocketAddr>,
    /// The users file logins are checked against (`SWITCHBOARD_USERS_FILE`, see
    /// [`crate::accounts::users_file`]). `None` (the default of [`AdminConfig::default`]) lets
    /// nobody log in. The file is read again when it changes: a removed account's sessions stop
    /// working at its next request, a changed role applies at once.
    pub users_file: Option<PathBuf>,
    /// A session unused for this long expires (`SWITCHBOARD_GATEWAY_ADMIN_SESSION_IDLE_SECS`,
    /// default 30 minutes).
    pub session_idle: Duration,
    /// A session expires this long after its login however active it is
    /// (`SWITCHBOARD_GATEWAY_ADMIN_SESSION_MAX_SECS`, default 12 hours).
    pub session_max: Duration,
    /// Whether the session cookie is marked `Secure` (`SWITCHBOARD_GATEWAY_ADMIN_SECURE_COOKIE`,
    /// default `false`; set `true` whenever the admin listener is reached over HTTPS).
    pub secure_cookie: bool,
    /// A bearer token that also opens `/metrics`, for a Prometheus scraper
    /// (`SWITCHBOARD_GATEWAY_METRICS_TOKEN_FILE`); without it `/metrics` needs a login.
    pub metrics_token: Option<Secret>,
    /// Login attempts per account per minute (`SWITCHBOARD_GATEWAY_LOGIN_ATTEMPTS_PER_ACCOUNT`,
    /// default 5).
    pub login_per_account_per_minute: u32,
    /// Login attempts per client address per minute
    /// (`SWITCHBOARD_GATEWAY_LOGIN_ATTEMPTS_PER_ADDRESS`, default 20).
    pub login_per_address_per_minute: u32,
    /// The folder whose subfolders hold `switchboard shadow` reports, shown at
    /// `/console/shadow` (`SWITCHBOARD_SHADOW_REPORTS`, default `$SWITCHBOARD_STATE/shadow`;
    /// `off` serves none). `None` in [`AdminConfig::default`].
    pub shadow_reports: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8081))),
            users_file: None,
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            secure_cookie: false,
            metrics_token: None,
            login_per_account_per_minute: 5,
            login_per_address_per_minute: 20,
            shadow_reports: None,
        }
    }
}

impl AdminConfig {
    /// Reads the variables documented on the fields; unset ones keep the defaults.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<AdminConfig, ConfigError> {
        let mut c = AdminConfig::default();
        if let Some(v) = get("SWITCHBOARD_GATEWAY_ADMIN_LISTEN") {
            c.listen = match v.trim() {
                "off" => None,
                addr => Some(addr.parse().map_err(|e| ConfigError::Invalid {
                    variable: "SWITCHBOARD_GATEWAY_ADMIN_LISTEN",
                    reason: format!("{addr:?}: {e} (an address such as 127.0.0.1:8081, or off)"),
                })?),
            };
        }
        c.session_idle = seconds(get, "SWITCHBOARD_GATEWAY_ADMIN_SESSION_IDLE_SECS", c.session_idle)?;
        c.session_max = seconds(get, "SWITCHBOARD_GATEWAY_ADMIN_SESSION_MAX_SECS", c.session_max)?;
        if let Some(v) = get("SWITCHBOARD_GATEWAY_ADMIN_SECURE_COOKIE") {
            c.secure_cookie = match v.trim() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(ConfigError::Invalid {
                        variable: "SWITCHBOARD_GATEWAY_ADMIN_SECURE_COOKIE",
                        reason: format!("{other:?}: expected true or false"),
                    })
                }
            };
        }
        if let Some(path) = get("SWITCHBOARD_GATEWAY_METRICS_TOKEN_FILE") {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                variable: "SWITCHBOARD_GATEWAY_METRICS_TOKEN_FILE",
                path: path.clone(),
                source,
            })?;
            let token = text.trim();
            if token.len() < 16 {
                return Err(ConfigError::Invalid {
                    variable: "SWITCHBOARD_GATEWAY_METRICS_TOKEN_FILE",
                    reason: format!("{path}: use a token of at least 16 characters"),
                });
            }
            c.metrics_token = Some(Secret::new(token.as_bytes().to_vec()));
        }
        c.login_per_account_per_minute =
            count(get, "SWITCHBOARD_GATEWAY_LOGIN_ATTEMPTS_PER_ACCOUNT", c.login_per_account_per_minute)?;
        c.login_per_address_per_minute =
            count(get, "SWITCHBOARD_GATEWAY_LOGIN_ATTEMPTS_PER_ADDRESS", c.login_per_address_per_minute)?;
        c.shadow_reports = match get("SWITCHBOARD_SHADOW_REPORTS") {
            Some(v) if v.trim() == "off" => None,
            Some(v) if !v.trim().is_empty() => Some(PathBuf::from(v.trim())),
            _ => Some(crate::accounts::state_dir(get).join("shadow")),
        };
        Ok(c)
    }
}

fn seconds(get: &dyn Fn(&str) -> Option<String>, variable: &'static str, default: Duration) -> Result<Duration, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
            _ => Err(ConfigError::Invalid { variable, reason: format!("{v:?}: expected a positive number of seconds") }),
        },
    }
}

fn count(get: &dyn Fn(&str) -> Option<String>, variable: &'static str, default: u32) -> Result<u32, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::Invalid { variable, reason: format!("{v:?}: expected a positive whole number") }),
        },
    }
}
