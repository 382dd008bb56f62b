//! The customer-side tokens: the gateway's own resume tokens ([`resume`]) and the host site's id
//! tokens ([`id_token`]). Both are JWTs and travel in frames, never in URLs.

pub mod id_token;
pub mod resume;

pub use id_token::{bound_user, IdTokenError, IdTokenVerifier};
pub use resume::{ResumeError, ResumeKeys};
