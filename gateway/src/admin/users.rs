//! The accounts the admin listener checks logins and sessions against, read again from the users
//! file whenever it changes (so `switchboard user add` applies without a restart, and a removed
//! account loses its sessions).

use crate::accounts::{Account, Accounts};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A cached view of the users file.
pub(crate) struct UserStore {
    path: Option<PathBuf>,
    cached: Mutex<(Option<SystemTime>, Arc<Option<Accounts>>)>,
}

impl UserStore {
    /// The store of `path`; `None` knows no account.
    pub(crate) fn new(path: Option<PathBuf>) -> UserStore {
        let store = UserStore { path, cached: Mutex::new((None, Arc::new(None))) };
        match store.accounts().as_ref() {
            Some(a) if !a.is_empty() => tracing::info!(accounts = a.len(), "admin accounts loaded"),
            _ => tracing::warn!(
                "no admin accounts: nobody can log in to the console or the agent page; create one with \
                 `switchboard user add NAME --role admin`"
            ),
        }
        store
    }

    /// The current accounts (re-read when the file's modification time changed).
    pub(crate) fn accounts(&self) -> Arc<Option<Accounts>> {
        let Some(path) = &self.path else { return Arc::new(None) };
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if cached.0 != modified || modified.is_none() {
            let loaded = match Accounts::load(path) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the users file; no login is accepted until it is fixed");
                    None
                }
            };
            *cached = (modified, Arc::new(loaded));
        }
        cached.1.clone()
    }

    /// The account `name`, if it exists now.
    pub(crate) fn get(&self, name: &str) -> Option<Account> {
        self.accounts().as_ref().as_ref().and_then(|a| a.get(name).cloned())
    }
}
