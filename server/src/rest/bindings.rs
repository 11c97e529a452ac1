//! `/api/v1/role-bindings`: who has which role where. Listing is open to
//! every signed-in caller (who may approve where is worth knowing);
//! adding and removing need admin on all. Every change is a ledger event
//! (`binding.created`, `binding.removed`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::access::{Role, Scope, Subject};
use switchyard_domain::Timestamp;
use utoipa::ToSchema;

use super::actor::Actor;
use super::extract::{ApiJson, ApiPath};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::identity::StoredBinding;

/// Adding and removing bindings: admin on all.
pub const CHANGE: Role = Role::Admin;

/// The body of `POST /api/v1/role-bindings`: exactly one of `user` and `group`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBinding {
    /// A user's name (the user must exist).
    #[schema(example = "alice")]
    pub user: Option<String>,
    /// An identity-provider group (as in the users' `groups`).
    #[schema(example = "platform")]
    pub group: Option<String>,
    /// `viewer`, `deployer`, `approver` or `admin`.
    #[schema(example = "deployer", pattern = "^(viewer|deployer|approver|admin)$")]
    pub role: String,
    /// One environment (it must exist), or `all` (also when absent or null).
    #[schema(example = "staging", pattern = "^[a-z0-9][a-z0-9._-]{0,63}$|^\\*$")]
    pub environment: Option<String>,
}

/// A binding as the API shows it.
pub fn shown(b: &StoredBinding) -> Value {
    let (user, group) = match &b.binding.subject {
        Subject::User(u) => (Some(u.as_str()), None),
        Subject::Group(g) => (None, Some(g.as_str())),
    };
    json!({
        "id": b.id,
        "user": user,
        "group": group,
        "role": b.binding.role,
        "environment": b.binding.scope.to_string(),
        "created_at": b.created_at,
        "created_by": b.created_by,
    })
}

#[utoipa::path(get, path = "/api/v1/role-bindings", tag = "access",
    responses((status = 200, description = "Every role binding, oldest first: who (`user` or `group`) has which `role` where (`environment`: one environment, or `all`)", body = ref("#/components/schemas/RoleBindingList"))))]
pub async fn list(State(app): State<AppState>, actor: Actor) -> Result<Json<Value>, ApiError> {
    actor.require(Role::Viewer, "listing role bindings")?;
    let all = app.store.list_bindings().await?;
    Ok(Json(
        json!({ "bindings": all.iter().map(shown).collect::<Vec<_>>() }),
    ))
}

#[utoipa::path(post, path = "/api/v1/role-bindings", tag = "access",
    request_body = CreateBinding,
    responses(
        (status = 201, description = "Added (`binding.created`); it holds for the subject's next request", body = ref("#/components/schemas/RoleBinding")),
        (status = 403, description = "Needs an admin binding for all", body = ref("#/components/schemas/Error")),
        (status = 404, description = "Unknown user or environment", body = ref("#/components/schemas/Error")),
        (status = 409, description = "The same binding exists", body = ref("#/components/schemas/Error")),
        (status = 422, description = "Not exactly one of user and group, an unknown role, or a malformed name", body = ref("#/components/schemas/Error")),
    ))]
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateBinding>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    actor.require(CHANGE, "adding a role binding")?;
    let subject = match (body.user.as_deref(), body.group.as_deref()) {
        (Some(u), None) => Subject::parse("user", u)?,
        (None, Some(g)) => Subject::parse("group", g)?,
        _ => {
            return Err(ApiError::invalid(
                "a binding names exactly one of \"user\" and \"group\"",
            ))
        }
    };
    let role: Role = body.role.trim().parse()?;
    let scope = Scope::parse(body.environment.as_deref())?;
    let binding = switchyard_domain::access::Binding::new(subject, role, scope);
    let stored = app
        .store
        .create_binding(&binding, &actor.name, Timestamp::now())
        .await?;
    Ok((StatusCode::CREATED, Json(shown(&stored))))
}

#[utoipa::path(delete, path = "/api/v1/role-bindings/{id}", tag = "access",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "Removed (`binding.removed`); the binding as it was", body = ref("#/components/schemas/RoleBinding")),
        (status = 403, description = "Needs an admin binding for all", body = ref("#/components/schemas/Error")),
        (status = 404, description = "No such binding", body = ref("#/components/schemas/Error")),
        (status = 409, description = "The last admin binding on all of an enabled user is kept", body = ref("#/components/schemas/Error")),
    ))]
pub async fn remove(
    State(app): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    actor.require(CHANGE, "removing a role binding")?;
    let removed = app
        .store
        .remove_binding(id, &actor.name, Timestamp::now())
        .await?;
    Ok(Json(shown(&removed)))
}
