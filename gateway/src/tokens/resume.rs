//! Resume tokens: what `welcome` carries and what a `hello` with a `dialogue_id` must present.
//!
//! A token is a JWT (HS256) with a `kid` header naming the key that signed it, and the claims
//! `sub` (the user), `did` (the dialogue), `aud` = [`AUDIENCE`], `iat` and `exp`. Any gateway
//! instance configured with the same keys verifies it: no in-memory owner map decides who may
//! resume a dialogue. Keys rotate by adding a new first line to the keys file (it signs) and
//! keeping the old ones (they still verify) until the old tokens expired.
//!
//! The keys come from `SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE` (one `kid:secret` a line, the first
//! signs; blank lines and `#` comments ignored; secrets of at least 32 bytes) or
//! `SWITCHBOARD_GATEWAY_RESUME_KEY` (one secret, kid `env`). Without either the gateway makes a
//! random key at start and logs a warning: resumes then work only on that instance until it
//! restarts.

use crate::config::ConfigError;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `aud` claim of every resume token (so that no other token of the site can pass as one).
pub const AUDIENCE: &str = "switchboard-resume";

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// The signing and verifying keys.
#[derive(Clone)]
pub struct ResumeKeys {
    /// (kid, secret), the first one signs.
    keys: Vec<(String, Vec<u8>)>,
    /// How long a token is valid.
    ttl: Duration,
    /// Whether the keys were made at start (not shared with other instances).
    ephemeral: bool,
}

impl std::fmt::Debug for ResumeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(kid, _)| kid.as_str()).collect();
        f.debug_struct("ResumeKeys").field("kids", &kids).field("ttl", &self.ttl).field("ephemeral", &self.ephemeral).finish()
    }
}

/// Why a resume token was refused (the client only learns `unauthorized`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// No token in the hello.
    #[error("a resume needs the resume_token of the dialogue's welcome")]
    Missing,
    /// Not a token, a wrong signature, an unknown key id or a wrong audience.
    #[error("invalid resume token")]
    Invalid,
    /// The token expired.
    #[error("the resume token expired")]
    Expired,
    /// A valid token of another dialogue or user.
    #[error("the resume token is for another dialogue or user")]
    Mismatch,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    did: String,
    aud: String,
    iat: u64,
    exp: u64,
}

impl ResumeKeys {
    /// Keys from `(kid, secret)` pairs, the first one signing.
    pub fn new(keys: Vec<(String, Vec<u8>)>, ttl: Duration) -> Result<ResumeKeys, ConfigError> {
        if keys.is_empty() {
            return Err(invalid("no key"));
        }
        for (kid, secret) in &keys {
            if kid.is_empty() || kid.len() > 64 || !kid.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(invalid("a key id must have 1 to 64 characters of A-Z a-z 0-9 - _ ."));
            }
            if secret.len() < MIN_SECRET_BYTES {
                return Err(invalid(&format!("the secret of key {kid} is shorter than {MIN_SECRET_BYTES} bytes")));
            }
        }
        Ok(ResumeKeys { keys, ttl, ephemeral: false })
    }

    /// A random key made now (one instance, until it restarts).
    pub fn ephemeral(ttl: Duration) -> ResumeKeys {
        let mut secret = vec![0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let kid = format!("ephemeral-{}", hex::encode(&secret[..4]));
        ResumeKeys { keys: vec![(kid, secret)], ttl, ephemeral: true }
    }

    /// Parses a keys file's text: one `kid:secret` a line, the first signing.
    pub fn parse(text: &str, ttl: Duration) -> Result<ResumeKeys, ConfigError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((kid, secret)) = line.split_once(':') else {
                return Err(invalid(&format!("line {}: expected kid:secret", n + 1)));
            };
            keys.push((kid.trim().to_string(), secret.trim().as_bytes().to_vec()));
        }
        ResumeKeys::new(keys, ttl)
    }

    /// Reads the keys from `SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE` or `SWITCHBOARD_GATEWAY_RESUME_KEY`
    /// (and the lifetime from `SWITCHBOARD_GATEWAY_RESUME_TOKEN_TTL_SECS`, default one day);
    /// `None` when neither is set.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<ResumeKeys>, ConfigError> {
        let ttl = match get("SWITCHBOARD_GATEWAY_RESUME_TOKEN_TTL_SECS") {
            None => Duration::from_secs(86_400),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Duration::from_secs(n),
                _ => {
                    return Err(ConfigError::Invalid {
                        variable: "SWITCHBOARD_GATEWAY_RESUME_TOKEN_TTL_SECS",
                        reason: format!("{v:?}: expected a positive number of seconds"),
                    })
                }
            },
        };
        if let Some(path) = get("SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE") {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                variable: "SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE",
                path: path.clone(),
                source,
            })?;
            return ResumeKeys::parse(&text, ttl).map(Some);
        }
        match get("SWITCHBOARD_GATEWAY_RESUME_KEY") {
            Some(secret) => ResumeKeys::new(vec![("env".to_string(), secret.trim().as_bytes().to_vec())], ttl).map(Some),
            None => Ok(None),
        }
    }

    /// Whether the key was made at start (resumes work only on this instance).
    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// A token for `dialogue_id` and `user_id`, valid from `now` for the configured lifetime.
    pub fn issue(&self, dialogue_id: &str, user_id: &str, now: SystemTime) -> String {
        let (kid, secret) = &self.keys[0];
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = Claims {
            sub: user_id.to_string(),
            did: dialogue_id.to_string(),
            aud: AUDIENCE.to_string(),
            iat,
            exp: iat + self.ttl.as_secs(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        // HS256 over serialisable claims cannot fail; an empty token would only be refused later.
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap_or_default()
    }

    /// Checks `token` for `dialogue_id` and `user_id` at `now`.
    pub fn verify(&self, token: Option<&str>, dialogue_id: &str, user_id: &str, now: SystemTime) -> Result<(), ResumeError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(ResumeError::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| ResumeError::Invalid)?;
        if header.alg != Algorithm::HS256 {
            return Err(ResumeError::Invalid);
        }
        let kid = header.kid.ok_or(ResumeError::Invalid)?;
        let (_, secret) = self.keys.iter().find(|(k, _)| *k == kid).ok_or(ResumeError::Invalid)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        // Expiry is checked below against `now` (testable), without leeway.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|_| ResumeError::Invalid)?;
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        if data.claims.exp <= now {
            return Err(ResumeError::Expired);
        }
        if data.claims.did != dialogue_id || data.claims.sub != user_id {
            return Err(ResumeError::Mismatch);
        }
        Ok(())
    }
}

fn invalid(reason: &str) -> ConfigError {
    ConfigError::Invalid { variable: "SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE", reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a-secret-of-at-least-thirty-two-bytes-000";
    const B: &str = "b-secret-of-at-least-thirty-two-bytes-111";

    fn keys(text: &str) -> ResumeKeys {
        ResumeKeys::parse(text, Duration::from_secs(60)).unwrap()
    }

    #[test]
    fn a_token_resumes_only_its_dialogue_and_user_until_it_expires() {
        let k = keys(&format!("k1:{A}"));
        let now = SystemTime::now();
        let t = k.issue("d1", "u1", now);
        assert_eq!(k.verify(Some(&t), "d1", "u1", now), Ok(()));
        assert_eq!(k.verify(Some(&t), "d2", "u1", now), Err(ResumeError::Mismatch));
        assert_eq!(k.verify(Some(&t), "d1", "u2", now), Err(ResumeError::Mismatch));
        assert_eq!(k.verify(Some(&t), "d1", "u1", now + Duration::from_secs(61)), Err(ResumeError::Expired));
        assert_eq!(k.verify(None, "d1", "u1", now), Err(ResumeError::Missing));
        assert_eq!(k.verify(Some("not.a.token"), "d1", "u1", now), Err(ResumeError::Invalid));
    }

    #[test]
    fn keys_rotate_and_forgeries_fail() {
        let now = SystemTime::now();
        let old = keys(&format!("k1:{A}"));
        let rotated = keys(&format!("k2:{B}\nk1:{A}\n"));
        let t = old.issue("d", "u", now);
        assert_eq!(rotated.verify(Some(&t), "d", "u", now), Ok(()), "old tokens verify after rotation");
        let t2 = rotated.issue("d", "u", now);
        assert_eq!(old.verify(Some(&t2), "d", "u", now), Err(ResumeError::Invalid), "unknown kid");
        // Same kid, other secret: a forgery.
        let forger = keys(&format!("k1:{B}"));
        assert_eq!(old.verify(Some(&forger.issue("d", "u", now)), "d", "u", now), Err(ResumeError::Invalid));
        // alg none or a tampered payload.
        let mut parts: Vec<&str> = t.split('.').collect();
        let other = rotated.issue("d2", "u", now);
        parts[1] = other.split('.').nth(1).unwrap();
        assert_eq!(old.verify(Some(&parts.join(".")), "d2", "u", now), Err(ResumeError::Invalid));
    }

    #[test]
    fn bad_key_files_are_refused() {
        assert!(ResumeKeys::parse("", Duration::from_secs(1)).is_err());
        assert!(ResumeKeys::parse("k1:short", Duration::from_secs(1)).is_err());
        assert!(ResumeKeys::parse(&format!("bad kid:{A}"), Duration::from_secs(1)).is_err());
        assert!(ResumeKeys::parse(A, Duration::from_secs(1)).is_err());
        let k = ResumeKeys::parse(&format!("# comment\n\nk1:{A}\n"), Duration::from_secs(1)).unwrap();
        assert!(!format!("{k:?}").contains(A), "Debug must not show secrets");
    }
}
