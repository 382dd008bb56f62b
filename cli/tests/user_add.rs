//! `switchboard user add`: accounts for the admin listener, with the password from standard
//! input or a file and never from an argument; stored as argon2id hashes in a mode-600 file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-user-add-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn user_add(users: &Path, args: &[&str], stdin: &str, extra_env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["user", "add"])
        .args(args)
        .env("SWITCHBOARD_USERS_FILE", users)
        .env_remove("SWITCHBOARD_USER_PASSWORD_FILE")
        .envs(extra_env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("switchboard starts");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("password written");
    child.wait_with_output().expect("switchboard ends")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn accounts_are_added_and_updated_with_hashed_passwords_from_stdin_or_a_file() {
    let dir = temp_dir("ok");
    let users = dir.join("users.json");
    let out = user_add(&users, &["alice", "--role", "agent"], "first secret phrase\n", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("added agent alice"), "{}", stderr(&out));
    let text = std::fs::read_to_string(&users).expect("users file");
    assert!(text.contains("\"alice\"") && text.contains("$argon2id$"), "{text}");
    assert!(!text.contains("first secret phrase"), "the password is stored only as a hash");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&users).expect("file").permissions().mode() & 0o777, 0o600);

    let password_file = dir.join("password");
    std::fs::write(&password_file, "second secret phrase\n").expect("password file");
    let file_env = password_file.to_str().expect("utf-8 path");
    let out = user_add(&users, &["alice", "--role", "supervisor"], "", &[("SWITCHBOARD_USER_PASSWORD_FILE", file_env)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("updated supervisor alice"), "{}", stderr(&out));
    let accounts = switchboard_gateway::accounts::Accounts::load(&users).expect("users file");
    assert_eq!(accounts.len(), 1);
    assert!(accounts.verify("alice", "first secret phrase").is_none());
    assert_eq!(
        accounts.verify("alice", "second secret phrase").map(|a| a.role),
        Some(switchboard_gateway::accounts::Role::Supervisor)
    );
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!all.contains("secret phrase"), "the password is never printed: {all}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_roles_names_and_passwords_exit_2_with_one_line_and_write_nothing() {
    let dir = temp_dir("bad");
    let users = dir.join("users.json");
    for (args, stdin, says) in [
        (vec!["bob", "--role", "root"], "a long enough password", "unknown role `root`"),
        (vec!["bad name", "--role", "viewer"], "a long enough password", "not a login name"),
        (vec!["bob", "--role", "viewer"], "short\n", "shorter than 12"),
    ] {
        let out = user_add(&users, &args, stdin, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(says) && err.trim_end().lines().count() == 1, "{args:?}: {err}");
        assert!(!err.contains(stdin.trim()) || stdin.trim().len() < 6, "{err}");
    }
    // No flag takes the password.
    let out = user_add(&users, &["bob", "--role", "viewer", "--password", "a long enough password"], "", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!users.exists(), "nothing was written");
    std::fs::remove_dir_all(&dir).ok();
}
