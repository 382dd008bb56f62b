//! Id tokens from the host site: a site that authenticates its users passes a JWT in `hello`
//! (`"id_token"`); the gateway checks its signature, `exp` and `aud` (and `iss` when configured)
//! and binds the dialogue to its `sub`.
//!
//! | variable | meaning |
//! |---|---|
//! | `SWITCHBOARD_GATEWAY_ID_TOKEN_ALG` | `HS256`, `RS256` or `EdDSA` (required with a key) |
//! | `SWITCHBOARD_GATEWAY_ID_TOKEN_KEY_FILE` | the HS256 secret, or the RS256/EdDSA public key in PEM |
//! | `SWITCHBOARD_GATEWAY_ID_TOKEN_AUDIENCE` | the expected `aud` (required with a key) |
//! | `SWITCHBOARD_GATEWAY_ID_TOKEN_ISSUER` | the expected `iss` (optional) |
//! | `SWITCHBOARD_GATEWAY_REQUIRE_ID_TOKEN` | `true`: a hello without a valid id token is refused |

use crate::config::ConfigError;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// How id tokens are checked.
#[derive(Clone)]
pub struct IdTokenVerifier {
    key: DecodingKey,
    validation: Validation,
    /// Whether a hello must carry one.
    pub required: bool,
}

impl std::fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("algorithms", &self.validation.algorithms)
            .field("audience", &self.validation.aud)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

/// Why an id token was refused (the client only learns `unauthorized`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// The gateway has no id-token key configured.
    #[error("this gateway accepts no id tokens")]
    NotConfigured,
    /// The gateway requires one and the hello has none.
    #[error("an id_token is required")]
    Missing,
    /// Bad signature, wrong algorithm, expired, wrong audience or issuer, or no subject.
    #[error("invalid id token: {0}")]
    Invalid(String),
    /// The hello's `user_id` is not the token's subject.
    #[error("user_id is not the id token's subject")]
    SubjectMismatch,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
}

impl IdTokenVerifier {
    /// A verifier for `algorithm` with `key` (an HS256 secret or a PEM public key), expecting
    /// `audience` (and `issuer` when given).
    pub fn new(
        algorithm: Algorithm,
        key: &[u8],
        audience: &str,
        issuer: Option<&str>,
        required: bool,
    ) -> Result<IdTokenVerifier, ConfigError> {
        let key = match algorithm {
            Algorithm::HS256 => {
                if key.len() < 32 {
                    return Err(invalid("SWITCHBOARD_GATEWAY_ID_TOKEN_KEY_FILE", "an HS256 secret needs at least 32 bytes"));
                }
                DecodingKey::from_secret(key)
            }
            Algorithm::RS256 => DecodingKey::from_rsa_pem(key)
                .map_err(|e| invalid("SWITCHBOARD_GATEWAY_ID_TOKEN_KEY_FILE", &format!("not an RSA public key in PEM: {e}")))?,
            Algorithm::EdDSA => DecodingKey::from_ed_pem(key).map_err(|e| {
                invalid("SWITCHBOARD_GATEWAY_ID_TOKEN_KEY_FILE", &format!("not an Ed25519 public key in PEM: {e}"))
            })?,
            _ => return Err(invalid("SWITCHBOARD_GATEWAY_ID_TOKEN_ALG", "expected HS256, RS256 or EdDSA")),
        };
        if audience.trim().is_empty() {
            return Err(invalid("SWITCHBOARD_GATEWAY_ID_TOKEN_AUDIENCE", "required with an id-token key"));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.leeway = 30;
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
        }
        Ok(IdTokenVerifier { key, validation, required })
    }

    /// Reads the `SWITCHBOARD_GATEWAY_ID_TOKEN_*` variables; `None` when no key file is set.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<IdTokenVerifier>, ConfigError> {
        let required = match get("SWITCHBOARD_GATEWAY_REQUIRE_ID_TOKEN").as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(invalid("SWITCHBOARD_GATEWAY_REQUIRE_ID_TOKEN", &format!("{other:?}: expected true or false"))),
        };
        let Some(path) = get("SWITCHBOARD_GATEWAY_ID_TOKEN_KEY_FILE") else {
            if required {
                return Err(invalid("SWITCHBOARD_GATEWAY_REQUIRE_ID_TOKEN", "needs SWITCHBOARD_GATEWAY_ID_TOKEN_KEY_FILE"));
            }
            return Ok(None);
        };
        let algorithm = match get("SWITCHBOARD_GATEWAY_ID_TOKEN_ALG").as_deref().map(str::trim) {
            Some("HS256") => Algorithm::HS256,
            Some("RS256") => Algorithm::RS256,
            Some("EdDSA") => Algorithm::EdDSA,
            _ => return Err(invalid("SWITCHBOARD_GATEWAY_ID_TOKEN_ALG", "expected HS256, RS256 or EdDSA")),
        };
        let key = std::fs::read(&path).map_err(|source| ConfigError::SecretFile {
            variable: "SWITCHBOARD_GATEWAY_ID_TOKEN_KEY_FILE",
            path: path.clone(),
            source,
        })?;
        let key = if algorithm == Algorithm::HS256 { trim_newline(&key).to_vec() } else { key };
        let audience = get("SWITCHBOARD_GATEWAY_ID_TOKEN_AUDIENCE").unwrap_or_default();
        let issuer = get("SWITCHBOARD_GATEWAY_ID_TOKEN_ISSUER");
        IdTokenVerifier::new(algorithm, &key, &audience, issuer.as_deref(), required).map(Some)
    }

    /// The subject of a valid `token`.
    pub fn subject(&self, token: &str) -> Result<String, IdTokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| IdTokenError::Invalid(e.kind_name()))?;
        if data.claims.sub.is_empty() {
            return Err(IdTokenError::Invalid("empty subject".into()));
        }
        Ok(data.claims.sub)
    }
}

/// The user a hello binds its dialogue to: the id token's subject when there is one (the
/// hello's `user_id` must then be that subject), else the hello's `user_id`.
pub fn bound_user(
    verifier: Option<&IdTokenVerifier>,
    user_id: &str,
    id_token: Option<&str>,
) -> Result<String, IdTokenError> {
    match (verifier, id_token) {
        (None, None) => Ok(user_id.to_string()),
        (None, Some(_)) => Err(IdTokenError::NotConfigured),
        (Some(v), None) if v.required => Err(IdTokenError::Missing),
        (Some(_), None) => Ok(user_id.to_string()),
        (Some(v), Some(token)) => {
            let subject = v.subject(token)?;
            if subject != user_id {
                return Err(IdTokenError::SubjectMismatch);
            }
            Ok(subject)
        }
    }
}

trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for jsonwebtoken::errors::Error {
    /// The error's kind without any token content.
    fn kind_name(&self) -> String {
        use jsonwebtoken::errors::ErrorKind as K;
        match self.kind() {
            K::ExpiredSignature => "expired",
            K::InvalidAudience => "wrong audience",
            K::InvalidIssuer => "wrong issuer",
            K::InvalidSignature => "bad signature",
            K::InvalidAlgorithm => "wrong algorithm",
            K::MissingRequiredClaim(_) => "a required claim is missing",
            K::ImmatureSignature => "not valid yet",
            _ => "malformed",
        }
        .to_string()
    }
}

fn trim_newline(bytes: &[u8]) -> &[u8] {
    let mut end = bytes.len();
    while end > 0 && (bytes[end - 1] == b'\n' || bytes[end - 1] == b'\r') {
        end -= 1;
    }
    &bytes[..end]
}

fn invalid(variable: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid { variable, reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET: &[u8] = b"an-hs256-secret-of-the-host-site-0123456789";

    fn token(secret: &[u8], alg: Algorithm, sub: &str, aud: &str, exp_in: i64) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let claims = serde_json::json!({"sub": sub, "aud": aud, "exp": now + exp_in});
        jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    #[test]
    fn hs256_checks_signature_expiry_audience_and_subject() {
        let v = IdTokenVerifier::new(Algorithm::HS256, SECRET, "shop", None, false).unwrap();
        assert_eq!(v.subject(&token(SECRET, Algorithm::HS256, "alice", "shop", 600)), Ok("alice".into()));
        assert!(v.subject(&token(SECRET, Algorithm::HS256, "alice", "shop", -600)).is_err(), "expired");
        assert!(v.subject(&token(SECRET, Algorithm::HS256, "alice", "other", 600)).is_err(), "audience");
        assert!(v.subject(&token(b"another-secret-another-secret-another", Algorithm::HS256, "alice", "shop", 600)).is_err());
        assert!(v.subject(&token(SECRET, Algorithm::HS384, "alice", "shop", 600)).is_err(), "algorithm");
        let good = token(SECRET, Algorithm::HS256, "alice", "shop", 600);
        assert_eq!(bound_user(Some(&v), "alice", Some(&good)), Ok("alice".into()));
        assert_eq!(bound_user(Some(&v), "mallory", Some(&good)), Err(IdTokenError::SubjectMismatch));
        assert_eq!(bound_user(None, "alice", Some(&good)), Err(IdTokenError::NotConfigured));
        assert_eq!(bound_user(Some(&v), "alice", None), Ok("alice".into()));
        let required = IdTokenVerifier::new(Algorithm::HS256, SECRET, "shop", None, true).unwrap();
        assert_eq!(bound_user(Some(&required), "alice", None), Err(IdTokenError::Missing));
    }

    /// A throwaway Ed25519 key pair made for this test only (`openssl genpkey -algorithm ed25519`).
    const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKmMAdohGS1zkNH2ndp4USTUXM5eem4iiFkCnO5pSaNu\n-----END PRIVATE KEY-----\n";
    const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAoWh43i8DLzVzXvYXLtqN8BgnYcvp1lG1s4s5vZpU3Kg=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn eddsa_tokens_verify_with_the_public_key_only() {
        let v = IdTokenVerifier::new(Algorithm::EdDSA, ED_PUBLIC.as_bytes(), "shop", Some("https://id.example"), true).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let sign = |claims: serde_json::Value| {
            let key = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap()
        };
        let good = sign(serde_json::json!({"sub": "bob", "aud": "shop", "iss": "https://id.example", "exp": now + 60}));
        assert_eq!(v.subject(&good), Ok("bob".into()));
        let wrong_issuer = sign(serde_json::json!({"sub": "bob", "aud": "shop", "iss": "https://evil", "exp": now + 60}));
        assert!(v.subject(&wrong_issuer).is_err());
        // An HS256 token "signed" with the public key as secret (algorithm confusion) is refused.
        let confused = token(ED_PUBLIC.as_bytes(), Algorithm::HS256, "bob", "shop", 60);
        assert!(v.subject(&confused).is_err());
    }

    #[test]
    fn config_is_checked() {
        assert!(IdTokenVerifier::new(Algorithm::HS256, b"short", "shop", None, false).is_err());
        assert!(IdTokenVerifier::new(Algorithm::HS256, SECRET, " ", None, false).is_err());
        assert!(IdTokenVerifier::new(Algorithm::RS256, b"not pem", "shop", None, false).is_err());
        let get = |name: &str| (name == "SWITCHBOARD_GATEWAY_REQUIRE_ID_TOKEN").then(|| "true".to_string());
        assert!(IdTokenVerifier::from_lookup(&get).is_err(), "required without a key");
    }
}
