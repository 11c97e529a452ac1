//! `switchyard user create|disable|groups`: people who sign in to the console.

use std::io::BufRead;

use anyhow::Context;
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;

use super::{Failure, Outcome, CLI_ACTOR};
use crate::auth::password;
use crate::store::Store;

/// The password is read from standard input (one line), never from the
/// command line, where it would show in `ps` and shell history.
fn read_password() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(Failure::usage("give the password on standard input, e.g. `read -s P; printf '%s\\n' \"$P\" | switchyard user create …`"));
    }
    Ok(password)
}

pub(super) async fn create(store: &dyn Store, username: &str, role: &str) -> Outcome {
    let role: Role = role
        .parse()
        .map_err(|e: switchyard_domain::DomainError| Failure::usage(e.to_string()))?;
    validate_username(username)?;
    let hash = password::hash(&read_password()?).map_err(|e| Failure::usage(e.to_string()))?;
    store
        .create_user(username, role, &hash, CLI_ACTOR, Timestamp::now())
        .await
        .map_err(|e| Failure::refused(format!("cannot create user {username}: {e}")))?;
    println!("user {username} created with a {role} binding on all environments (switchyard binding list)");
    Ok(())
}

pub(super) async fn disable(store: &dyn Store, username: &str) -> Outcome {
    store
        .disable_user(username, CLI_ACTOR, Timestamp::now())
        .await
        .map_err(|e| Failure::refused(format!("cannot disable user {username}: {e}")))?;
    println!("user {username} disabled: their sessions ended and their tokens stopped working");
    Ok(())
}

pub(super) async fn groups(store: &dyn Store, username: &str, groups: &str) -> Outcome {
    let groups: Vec<String> = groups
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    for g in &groups {
        switchyard_domain::policy::check_group_name(g).map_err(|e| Failure::usage(e.to_string()))?;
    }
    let set = store
        .set_user_groups(username, &groups, CLI_ACTOR, Timestamp::now())
        .await
        .map_err(|e| Failure::refused(format!("cannot set the groups of {username}: {e}")))?;
    if set.is_empty() {
        println!("user {username} is in no group");
    } else {
        println!("user {username} is in {}", set.join(", "));
    }
    Ok(())
}

/// Usernames appear in the ledger and in URLs: keep them plain.
fn validate_username(username: &str) -> Result<(), Failure> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !username.starts_with("token:");
    if ok {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "username {username:?} must be 1-64 letters, digits, '.', '_' or '-'"
        )))
    }
}
