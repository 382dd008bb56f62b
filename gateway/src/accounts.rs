//! Operator and agent accounts for the admin listener: a name, a role, and an argon2id password
//! hash (PHC string; the password itself is never stored, logged or echoed).
//!
//! The accounts live in one JSON file (`SWITCHBOARD_USERS_FILE`, default
//! `$SWITCHBOARD_STATE/users.json`), written atomically with mode 600. `switchboard user add`
//! creates or updates an account; the admin listener verifies logins against it.
//!
//! ```
//! use switchboard_gateway::accounts::{Accounts, Role};
//! let dir = std::env::temp_dir().join(format!("sb-accounts-doc-{}", std::process::id()));
//! let mut accounts = Accounts::load(&dir.join("users.json")).unwrap();
//! accounts.upsert("alice", Role::Agent, "correct horse battery").unwrap();
//! assert_eq!(accounts.verify("alice", "correct horse battery").map(|a| a.role), Some(Role::Agent));
//! assert!(accounts.verify("alice", "wrong password!!").is_none());
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

use crate::{Error, Result};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (argon2 hashes any length; this bounds the work per login).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// What an account may do; each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees the console.
    Viewer,
    /// Also takes over dialogues on the agent page.
    Agent,
    /// Also sees and manages every agent's dialogues.
    Supervisor,
    /// Also manages accounts and settings.
    Admin,
}

impl Role {
    /// Every role, least to most.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Agent, Role::Supervisor, Role::Admin];

    /// The name as written in the users file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role includes everything `needed` may do.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(name: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == name)
            .ok_or_else(|| Error::Account(format!("unknown role `{name}` (viewer, agent, supervisor or admin)")))
    }
}

/// One account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The login name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The argon2id hash of its password, as a PHC string (salt and parameters included).
    pub password_hash: String,
}

/// What [`Accounts::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// A new account.
    Added,
    /// An existing account got a new role and password.
    Updated,
}

/// The accounts of one users file.
#[derive(Debug, Clone)]
pub struct Accounts {
    path: PathBuf,
    accounts: BTreeMap<String, Account>,
}

/// The users file: `SWITCHBOARD_USERS_FILE`, else `users.json` in `SWITCHBOARD_STATE` (default
/// `.switchboard/`).
pub fn users_file() -> PathBuf {
    if let Ok(path) = std::env::var("SWITCHBOARD_USERS_FILE") {
        if !path.trim().is_empty() {
            return PathBuf::from(path);
        }
    }
    state_dir(&|name| std::env::var(name).ok()).join("users.json")
}

/// The state folder as `get` reads the environment: `SWITCHBOARD_STATE`, default `.switchboard`.
pub(crate) fn state_dir(get: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    PathBuf::from(get("SWITCHBOARD_STATE").unwrap_or_else(|| ".switchboard".into()))
}

/// Whether `name` can be a login name: 1 to 64 characters, ASCII letters, digits and `._@-`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

/// A password as read from standard input or a file: one trailing line break removed.
pub fn password_from_text(text: &str) -> &str {
    text.strip_suffix("\r\n").or_else(|| text.strip_suffix('\n')).unwrap_or(text)
}

fn check_password(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Error::Account(format!("the password is shorter than {MIN_PASSWORD_CHARS} characters")));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(Error::Account(format!("the password is longer than {MAX_PASSWORD_CHARS} characters")));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::Account("the password contains a control character (a line break?)".into()));
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Account(format!("cannot hash the password: {e}")))
}

impl Accounts {
    /// The accounts in `path`; none when the file does not exist yet.
    pub fn load(path: &Path) -> Result<Accounts> {
        let io = |source| Error::UsersFile { path: path.display().to_string(), source };
        let accounts = match std::fs::read_to_string(path) {
            Ok(text) => {
                let list: Vec<Account> = serde_json::from_str(&text).map_err(|e| {
                    Error::Account(format!("{} is not a users file: {e}", path.display()))
                })?;
                list.into_iter().map(|a| (a.name.clone(), a)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(e)),
        };
        Ok(Accounts { path: path.to_path_buf(), accounts })
    }

    /// The account called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.get(name)
    }

    /// How many accounts there are.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether there is no account.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Adds `name` with `role` and `password`, or gives an existing account that role and
    /// password, and saves the file. Refuses a bad name or a password outside the bounds.
    pub fn upsert(&mut self, name: &str, role: Role, password: &str) -> Result<Upsert> {
        if !valid_name(name) {
            return Err(Error::Account(format!(
                "`{name}` is not a login name (1 to 64 letters, digits and . _ @ -)"
            )));
        }
        check_password(password)?;
        let account = Account { name: name.to_string(), role, password_hash: hash_password(password)? };
        let outcome = if self.accounts.insert(name.to_string(), account).is_some() { Upsert::Updated } else { Upsert::Added };
        self.save()?;
        Ok(outcome)
    }

    /// The account whose name and password these are. An unknown name costs one hash check
    /// too, so the answer's timing does not tell which names exist.
    pub fn verify(&self, name: &str, password: &str) -> Option<&Account> {
        let account = self.accounts.get(name);
        let hash = account.map(|a| a.password_hash.as_str()).unwrap_or(DUMMY_HASH.as_str());
        let ok = PasswordHash::new(hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false);
        account.filter(|_| ok)
    }

    /// Writes the file atomically (a temporary file renamed over it), readable by its owner only.
    fn save(&self) -> Result<()> {
        let io = |source| Error::UsersFile { path: self.path.display().to_string(), source };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let list: Vec<&Account> = self.accounts.values().collect();
        let text = serde_json::to_string_pretty(&list)
            .map_err(|e| Error::Account(format!("cannot write the users file: {e}")))?;
        let tmp = self.path.with_extension("json.tmp");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            file.write_all(text.as_bytes()).map_err(io)?;
            file.write_all(b"\n").map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

/// An argon2id hash of a random password nobody knows (made once per process), checked for
/// unknown names.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let unguessable = SaltString::generate(&mut OsRng);
    hash_password(&format!("{}{}", unguessable.as_str(), unguessable.as_str())).unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("sb-accounts-{name}-{}", std::process::id())).join("users.json")
    }

    #[test]
    fn an_account_is_stored_hashed_and_verified() {
        let path = temp_file("store");
        let mut accounts = Accounts::load(&path).expect("empty");
        assert_eq!(accounts.upsert("op.1", Role::Viewer, "a long enough password").expect("added"), Upsert::Added);
        let text = std::fs::read_to_string(&path).expect("written");
        assert!(text.contains("$argon2id$") && !text.contains("a long enough password"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
        let again = Accounts::load(&path).expect("reads back");
        assert_eq!(again.verify("op.1", "a long enough password").map(|a| a.role), Some(Role::Viewer));
        assert!(again.verify("op.1", "a long enough passworD").is_none());
        assert!(again.verify("nobody", "a long enough password").is_none());
        let mut again = again;
        assert_eq!(again.upsert("op.1", Role::Admin, "another long password").expect("updated"), Upsert::Updated);
        assert_eq!(again.len(), 1);
        assert!(again.verify("op.1", "a long enough password").is_none());
        assert_eq!(again.verify("op.1", "another long password").map(|a| a.role), Some(Role::Admin));
        std::fs::remove_dir_all(path.parent().expect("dir")).ok();
    }

    #[test]
    fn bad_names_passwords_and_roles_are_refused() {
        let path = temp_file("refuse");
        let mut accounts = Accounts::load(&path).expect("empty");
        assert!(accounts.upsert("", Role::Agent, "a long enough password").is_err());
        assert!(accounts.upsert("a b", Role::Agent, "a long enough password").is_err());
        assert!(accounts.upsert("agent", Role::Agent, "short").is_err());
        assert!(accounts.upsert("agent", Role::Agent, "two\nlines of password").is_err());
        assert!("root".parse::<Role>().is_err());
        assert_eq!("supervisor".parse::<Role>().expect("role"), Role::Supervisor);
        assert!(!path.exists(), "nothing was written");
    }

    #[test]
    fn roles_include_the_ones_below_them() {
        assert!(Role::Admin.allows(Role::Agent) && Role::Agent.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Agent) && !Role::Agent.allows(Role::Supervisor));
    }

    #[test]
    fn the_dummy_hash_parses_so_unknown_names_cost_a_check() {
        assert!(PasswordHash::new(DUMMY_HASH.as_str()).is_ok());
        assert_eq!(password_from_text("secret\n"), "secret");
        assert_eq!(password_from_text("secret\r\n"), "secret");
        assert_eq!(password_from_text("secret"), "secret");
    }
}
