//! The console's MLflow import page (admins): the form's fields read and
//! checked here with the rules `switchyard import mlflow` uses, the import
//! itself run by `crate::mlflow::runs` (one pass of `mlflow::import`).

use app::data::{CredentialChoice, ImportRunView, MlflowImportForm, MlflowImports};
use app::error::AppError;
use app::session::SignedInUser;
use switchyard_domain::access::Role;
use switchyard_domain::mlflow as rules;

use super::to_app_error;
use crate::mlflow::runs::{ImportRequest, Refusal, Run, RUNS_KEPT};
use crate::state::AppState;

fn invalid(message: impl Into<String>) -> AppError {
    AppError::new("invalid_input", message)
}

fn view(r: Run) -> ImportRunView {
    let report = r.progress.snapshot();
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter().map(|(k, v)| format!("{k}={v}")).collect()
    };
    let state = match (&r.finished_at, &report.stopped) {
        (None, _) => "running",
        (Some(_), Some(_)) => "stopped",
        (Some(_), None) => "done",
    };
    ImportRunView {
        id: r.id,
        started_at: r.started_at,
        started_by: r.started_by,
        tracking_uri: r.request.tracking_uri,
        pattern: r.request.pattern,
        aliases: pairs(&r.request.aliases),
        stages: pairs(&r.request.stages),
        prefix: r.request.prefix,
        credential: r.request.credential,
        dry_run: r.request.dry_run,
        state: state.to_owned(),
        finished_at: r.finished_at,
        models_total: report.models_total,
        models_begun: report.models_begun,
        versions_read: report.versions_read,
        created: report.created,
        unchanged: report.unchanged,
        conflicts: report.conflicts,
        refused: report.refused,
        gone: report.gone,
        lines: report.lines,
        stopped: report.stopped,
        summary: r.summary,
    }
}

async fn environments(app: &AppState) -> Result<Vec<String>, AppError> {
    Ok(app
        .store
        .list_environments()
        .await
        .map_err(to_app_error)?
        .into_iter()
        .map(|e| e.name)
        .collect())
}

pub(super) async fn page(app: &AppState, user: &SignedInUser) -> Result<MlflowImports, AppError> {
    user.require(Role::Admin, "Importing from MLflow")?;
    Ok(MlflowImports {
        credentials: app
            .imports
            .sources()
            .into_iter()
            .map(|s| CredentialChoice {
                what: s.describe(),
                source: s.name,
                tracking_uri: s.tracking_uri,
            })
            .collect(),
        environments: environments(app).await?,
        // The list shows counts; each run's lines are on its own page.
        runs: app
            .imports
            .list()
            .into_iter()
            .map(|r| ImportRunView {
                lines: Vec::new(),
                ..view(r)
            })
            .collect(),
        kept: RUNS_KEPT,
    })
}

/// The form as an import request: every field checked before anything runs.
fn request(form: MlflowImportForm, known: &[String]) -> Result<ImportRequest, AppError> {
    let tracking_uri = form.tracking_uri.trim().trim_end_matches('/').to_owned();
    if tracking_uri.is_empty() {
        return Err(invalid(
            "Give the tracking URI of the MLflow server, e.g. http://mlflow.internal:5000.",
        ));
    }
    if !(tracking_uri.starts_with("http://") || tracking_uri.starts_with("https://")) {
        return Err(invalid(format!(
            "The tracking URI must be an http:// or https:// URL, not {tracking_uri:?}."
        )));
    }
    let pattern = Some(form.models.trim().to_owned()).filter(|p| !p.is_empty());
    if let Some(p) = &pattern {
        rules::check_pattern(p).map_err(invalid)?;
    }
    let split = |s: &str| s.split([',', '\n']).map(str::to_owned).collect::<Vec<_>>();
    let aliases = split(&form.aliases);
    let aliases = rules::parse_mapping(aliases.iter().map(String::as_str), known, "alias")
        .map_err(invalid)?;
    let stages = split(&form.stages);
    let stages =
        rules::parse_mapping(stages.iter().map(String::as_str), known, "stage").map_err(invalid)?;
    let prefix = form.prefix.trim().to_owned();
    rules::check_prefix(&prefix).map_err(|e| invalid(format!("prefix: {e}")))?;
    Ok(ImportRequest {
        tracking_uri,
        pattern,
        aliases,
        stages,
        prefix,
        credential: Some(form.credential.trim().to_owned()).filter(|c| !c.is_empty()),
        dry_run: form.dry_run,
    })
}

pub(super) async fn start(
    app: &AppState,
    user: &SignedInUser,
    form: MlflowImportForm,
) -> Result<ImportRunView, AppError> {
    user.require(Role::Admin, "Importing from MLflow")?;
    let request = request(form, &environments(app).await?)?;
    match app.imports.start(app.store.clone(), request, &user.username).await {
        Ok(run) => Ok(view(run)),
        Err(Refusal::Invalid(why)) => Err(invalid(why)),
        Err(Refusal::Unreachable(why)) => Err(AppError::new("mlflow_unreachable", format!(
            "{why}. Nothing was imported: check the tracking URI (and the credential) and start again."
        ))),
        Err(Refusal::Busy(why)) => Err(AppError::new("conflict", why)),
    }
}

pub(super) async fn run(
    app: &AppState,
    user: &SignedInUser,
    id: &str,
) -> Result<ImportRunView, AppError> {
    user.require(Role::Admin, "Importing from MLflow")?;
    app.imports.get(id).map(view).ok_or_else(|| {
        AppError::new(
            "not_found",
            format!(
                "No import {id:?} on this server. Imports started from the console are kept in the memory of \
                 the server that ran them (the last {RUNS_KEPT}); it may have restarted, or this request reached \
                 another server. What an import created is in the audit log (actor import:mlflow)."
            ),
        )
    })
}
