//! `POST /api/v1/mlflow/webhook`: MLflow's registry webhooks bring the
//! follow job's next read of a model forward (`crate::mlflow::webhook`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::mlflow::webhook;
use crate::state::AppState;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Receives an MLflow registry webhook (MLflow 3.x). Checked against the
/// secret in `SWITCHYARD_MLFLOW_WEBHOOK_SECRET` (MLflow's
/// `X-MLflow-Signature` scheme), then a follow pass over the model named in
/// the event is queued; the answer does not wait for it.
#[utoipa::path(post, path = "/api/v1/mlflow/webhook", tag = "mlflow", security(()),
    request_body(content = Object, description = "MLflow's webhook payload: `{entity, action, timestamp, data: {name, …}}`"),
    params(
        ("X-MLflow-Delivery-Id" = String, Header, description = "MLflow's delivery id"),
        ("X-MLflow-Timestamp" = String, Header, description = "Unix seconds; within 300 s of the server's clock"),
        ("X-MLflow-Signature" = String, Header, description = "`v1,` and base64 HMAC-SHA256 of `{delivery id}.{timestamp}.{body}` with the secret"),
    ),
    responses(
        (status = 202, description = "Verified; a follow pass over the model is queued (`model` null for events follow does not read)", body = Object),
        (status = 401, description = "Missing or wrong signature, or a timestamp too far from now; nothing done", body = ref("#/components/schemas/Error")),
        (status = 404, description = "This server does not follow MLflow by webhooks (SWITCHYARD_MLFLOW_FOLLOW and SWITCHYARD_MLFLOW_WEBHOOK_SECRET unset)", body = ref("#/components/schemas/Error")),
        (status = 413, description = "Body too large", body = ref("#/components/schemas/Error")),
        (status = 422, description = "Signed, but not an MLflow webhook body; nothing done", body = ref("#/components/schemas/Error")),
    ))]
pub async fn webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(follow) = app.mlflow.connected() else {
        return Err(ApiError::not_found(
            "this server does not follow MLflow by webhooks: set SWITCHYARD_MLFLOW_FOLLOW and \
             SWITCHYARD_MLFLOW_WEBHOOK_SECRET on `switchyard serve`",
        ));
    };
    follow
        .verify(
            header(&headers, "x-mlflow-delivery-id"),
            header(&headers, "x-mlflow-timestamp"),
            &body,
            header(&headers, "x-mlflow-signature"),
        )
        .map_err(|why| {
            tracing::warn!(source = "mlflow", %why, "MLflow webhook refused");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                format!("MLflow webhook refused: {why}"),
            )
        })?;
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("the webhook body is not JSON: {e}")))?;
    let model = webhook::model_of(&event).map_err(ApiError::invalid)?;
    let queued = match &model {
        Some(name) => follow.request_pass(name.clone()),
        None => false,
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "model": model, "pass_queued": queued })),
    ))
}
