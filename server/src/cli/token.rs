//! `switchyard token create|revoke`: API tokens for pipelines and model
//! servers. A token is shown once, when created; only its hash is stored.

use switchyard_domain::Timestamp;

use super::{Failure, Outcome, CLI_ACTOR};
use crate::auth::secret;
use crate::store::Store;

pub(super) async fn create(
    store: &dyn Store,
    user: &str,
    name: &str,
    expires: Option<&str>,
) -> Outcome {
    let now = Timestamp::now();
    let expires_at = expires
        .map(|e| {
            let lifetime = secret::parse_lifetime(e).map_err(|e| Failure::usage(e.to_string()))?;
            let micros = i64::try_from(lifetime.as_micros())
                .map_err(|_| Failure::usage("the lifetime is too long"))?;
            Ok::<_, Failure>(Timestamp::from_micros(now.micros().saturating_add(micros)))
        })
        .transpose()?;
    let token = secret::generate(secret::TOKEN_PREFIX);
    store
        .create_token(
            name,
            user,
            &secret::hash(&token),
            expires_at,
            CLI_ACTOR,
            now,
        )
        .await
        .map_err(|e| Failure::refused(format!("cannot create token {name}: {e}")))?;
    let until = expires_at.map_or_else(
        || "never expires".to_owned(),
        |t| format!("expires {}", t.to_rfc3339()),
    );
    eprintln!("token {name} for {user} ({until}); it is shown once, store it now:");
    println!("{token}");
    Ok(())
}

pub(super) async fn revoke(store: &dyn Store, name: &str) -> Outcome {
    store
        .revoke_token(name, CLI_ACTOR, Timestamp::now())
        .await
        .map_err(|e| Failure::refused(format!("cannot revoke token {name}: {e}")))?;
    println!("token {name} revoked");
    Ok(())
}
