//! What server functions may ask of the server, implemented in the `server`
//! crate on top of the store and handed in through Leptos context — so the
//! app never depends on the server crate, and the browser and the REST API
//! share one implementation of every rule.
//!
//! The server provides services only for a request with a valid session,
//! built for that user: `services()` refuses everything else with
//! `unauthenticated`, and each method checks the user's role
//! (`SignedInUser::require`) before it acts.

use std::sync::Arc;

use leptos::prelude::use_context;
use switchyard_domain::types::{Overview, RequestLookup, Version, VersionDetail};
use switchyard_domain::{FullId, ModelId, Stage};

use switchyard_domain::operations::{Operation, OperationKind};
use switchyard_domain::promotion::Promotion;

use switchyard_domain::analysis::{AnalysisTemplate, Decision};

use crate::data::{
    AccessView, AnalysisView, Approvals, AuditFilter, AuditView, BindingRow, Board,
    ClusterAnalysis, ClusterView, CreatedSubscription, ModelPage, NotificationStatus,
    RotatedSecret, ServingAnswer, SubscriptionDetail, SubscriptionForm, Subscriptions,
};
use crate::error::AppError;
use crate::session::SignedInUser;

#[async_trait::async_trait]
pub trait Services: Send + Sync + 'static {
    /// Whom these services act for.
    fn user(&self) -> &SignedInUser;

    async fn overview(&self) -> Result<Overview, AppError>;

    /// The change freezes in force now, one per frozen environment.
    async fn freezes(&self) -> Result<Vec<switchyard_domain::freeze::FreezeState>, AppError>;

    /// A model's history and page `page` (1-based) of its versions. Unknown
    /// model or a page past the end: `not_found`.
    async fn model_page(
        &self,
        model: &ModelId,
        page: u32,
        range: &crate::api::get_model_page::TimelineRange,
    ) -> Result<ModelPage, AppError>;

    /// Unknown version: `not_found`.
    async fn version_detail(&self, id: &FullId) -> Result<VersionDetail, AppError>;

    /// The lifecycle board of `model`, or of the first model when `None`.
    async fn board(&self, model: Option<&ModelId>) -> Result<Board, AppError>;

    /// A move made from the board, checked by `lifecycle::check_move`.
    async fn move_stage(
        &self,
        id: &FullId,
        to: Stage,
        reason: Option<&str>,
    ) -> Result<Version, AppError>;

    /// One page of the filtered audit log, newest first, after `cursor`.
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        cursor: Option<&str>,
    ) -> Result<AuditView, AppError>;

    /// Walks the hash chain and, when the server has a checkpoint file and
    /// `public_key` (64 hex digits) is given, checks every signed checkpoint
    /// against the ledger. A malformed key is refused before anything is read.
    async fn audit_verify(
        &self,
        public_key: Option<&str>,
    ) -> Result<crate::data::AuditVerification, AppError>;

    /// What each environment pinned at an instant: `at` (RFC 3339), or
    /// `local` (a `datetime-local` value) in the IANA time zone `tz`; now
    /// when neither is given.
    async fn serving_at(
        &self,
        at: Option<&str>,
        local: Option<&str>,
        tz: &str,
        env: Option<&str>,
        model: Option<&ModelId>,
    ) -> Result<ServingAnswer, AppError>;

    /// Unknown request id: `not_found`.
    async fn request_lookup(&self, request_id: &str) -> Result<RequestLookup, AppError>;

    /// Every cluster with its few most recent operations; with `summary`,
    /// only its running operation and drift (`allowed` and `health_now` empty).
    async fn clusters(&self, summary: bool) -> Result<Vec<ClusterView>, AppError>;

    /// One cluster with its operations history. Unknown cluster: `not_found`.
    async fn cluster(&self, name: &str) -> Result<ClusterView, AppError>;

    /// The "Add a cluster" form: environments, and whether the user may add one.
    async fn cluster_form(&self) -> Result<crate::data::ClusterForm, AppError>;

    /// Registers a cluster as `POST /api/v1/clusters` does (admins on all);
    /// `config` is the driver config as typed: JSON or YAML, blank for none.
    async fn add_cluster(
        &self,
        name: &str,
        environment: &str,
        driver: &str,
        config: &str,
    ) -> Result<switchyard_domain::clusters::Cluster, AppError>;

    /// Runs the checks of `POST /api/v1/clusters/{name}/test` (deployers and
    /// up in the cluster's environment). Unknown cluster: `not_found`.
    async fn test_cluster(&self, name: &str) -> Result<crate::data::ConnectionTest, AppError>;

    /// Removes a cluster as `DELETE /api/v1/clusters/{name}` does (admins on
    /// all; refused for one that ran or runs an operation).
    async fn remove_cluster(&self, name: &str) -> Result<(), AppError>;

    /// An operation with its steps. Unknown: `not_found`.
    async fn operation(&self, id: i64) -> Result<Operation, AppError>;

    /// Asks for a blue-green switch, rolling update or hot reload, with the
    /// same checks as `POST /api/v1/clusters/{name}/operations`.
    async fn start_operation(
        &self,
        cluster: &str,
        kind: OperationKind,
        full_id: &FullId,
        rolling_steps: Vec<u8>,
        reason: Option<&str>,
    ) -> Result<Operation, AppError>;

    /// Sends traffic back to what served before the last operation, with the
    /// same checks as `POST /api/v1/clusters/{name}/rollback`.
    async fn roll_back(&self, cluster: &str, reason: Option<&str>) -> Result<Operation, AppError>;

    /// Pending promotions with their config diffs against what their environment runs, and
    /// the recently decided ones.
    async fn approvals(&self) -> Result<Approvals, AppError>;

    /// Requests a promotion as `POST /api/v1/promotions` does (deployer and up).
    async fn request_promotion(
        &self,
        full_id: &str,
        environment: &str,
        reason: &str,
    ) -> Result<Promotion, AppError>;

    /// Approves as `POST /api/v1/promotions/{id}/approve` does (approver and up).
    async fn approve_promotion(&self, id: i64, reason: Option<&str>)
        -> Result<Promotion, AppError>;

    /// Rejects as `POST /api/v1/promotions/{id}/reject` does (approver and up).
    async fn reject_promotion(&self, id: i64, reason: &str) -> Result<Promotion, AppError>;

    /// Withdraws as `POST /api/v1/promotions/{id}/withdraw` does (the requester only).
    async fn withdraw_promotion(&self, id: i64, reason: &str) -> Result<Promotion, AppError>;

    /// Every notification subscription with its health (admins).
    async fn subscriptions(&self) -> Result<Subscriptions, AppError>;

    /// One subscription with its recent deliveries (admins). Unknown: `not_found`.
    async fn subscription(&self, name: &str) -> Result<SubscriptionDetail, AppError>;

    /// Creates a subscription (admins); lists are comma-separated, empty for any.
    async fn create_subscription(
        &self,
        form: &SubscriptionForm,
    ) -> Result<CreatedSubscription, AppError>;

    /// Deletes a subscription with its secrets and deliveries (admins).
    async fn delete_subscription(&self, name: &str) -> Result<(), AppError>;

    /// Queues a test message to a subscription (admins).
    async fn send_test_message(&self, name: &str) -> Result<(), AppError>;

    /// Queues a delivery again with its webhook-id (admins).
    async fn redeliver(&self, delivery_id: i64) -> Result<(), AppError>;

    /// A new signing secret; the previous ones sign for `overlap_hours` more (admins).
    async fn rotate_subscription_secret(
        &self,
        name: &str,
        overlap_hours: Option<i64>,
    ) -> Result<RotatedSecret, AppError>;

    /// Whether notifications are delivered (any signed-in user; for the overview).
    async fn notification_status(&self) -> Result<NotificationStatus, AppError>;
    /// Every role binding, for the Access page (any signed-in user).
    async fn access(&self) -> Result<AccessView, AppError>;

    /// Adds a binding (admin on all): `subject_kind` is `user` or `group`;
    /// `environment` `all` or one environment.
    async fn add_binding(
        &self,
        subject_kind: &str,
        subject: &str,
        role: &str,
        environment: &str,
    ) -> Result<BindingRow, AppError>;

    /// Removes binding `id` (admin on all).
    async fn remove_binding(&self, id: i64) -> Result<BindingRow, AppError>;

    /// Policies, freezes and overrides, for the Release policy page (any signed-in user).
    async fn release_policy(&self) -> Result<crate::data::ReleasePolicyView, AppError>;

    /// Sets `environment`'s approval policy as the form gives it (admin on
    /// all): numbers as text, required groups comma-separated,
    /// `requester_group_may_approve` `yes` or `no`.
    async fn set_approval_policy(
        &self,
        environment: &str,
        required_approvals: &str,
        required_groups: &str,
        requester_group_may_approve: &str,
        expiry_hours: &str,
    ) -> Result<crate::data::SavedPolicy, AppError>;

    /// Adds a freeze window (admin on all): `kind` `one_off` (from, to: UTC
    /// `YYYY-MM-DD HH:MM` or RFC 3339) or `weekly` (days comma-separated,
    /// start HH:MM, duration in minutes, IANA time zone).
    async fn add_freeze(
        &self,
        form: crate::data::FreezeForm,
    ) -> Result<switchyard_domain::freeze::FreezeWindow, AppError>;

    /// Removes freeze window `id` (admin on all).
    async fn remove_freeze(
        &self,
        id: i64,
    ) -> Result<switchyard_domain::freeze::FreezeWindow, AppError>;

    /// Requests an emergency override (admin on all), with a reason.
    async fn request_override(
        &self,
        environment: &str,
        reason: &str,
        hours: &str,
    ) -> Result<switchyard_domain::freeze::FreezeOverride, AppError>;

    /// Approves override `id` as the second person (approver or admin on all).
    async fn approve_override(
        &self,
        id: i64,
    ) -> Result<switchyard_domain::freeze::FreezeOverride, AppError>;

    /// Every analysis template and what each cluster attaches (any signed-in user).
    async fn analysis(&self) -> Result<AnalysisView, AppError>;

    /// Creates or replaces a template (admin on all), checked as
    /// `PUT /api/v1/analysis-templates/{name}` checks it: by the domain, then
    /// by the PromQL parser of the Prometheus it names; a reason required
    /// (for the ledger). True when created.
    async fn save_analysis_template(
        &self,
        template: AnalysisTemplate,
        reason: Option<&str>,
    ) -> Result<bool, AppError>;

    /// Removes a template (admin on all), a reason required; operations
    /// that copied it keep their copy.
    async fn remove_analysis_template(
        &self,
        name: &str,
        reason: Option<&str>,
    ) -> Result<(), AppError>;

    /// Sets the templates every operation on `cluster` runs (admin on all); empty detaches all.
    async fn set_cluster_analysis(
        &self,
        cluster: &str,
        templates: Vec<String>,
    ) -> Result<ClusterAnalysis, AppError>;

    /// The MLflow import page: credentials an import may name, recent imports (admins).
    async fn mlflow_imports(&self) -> Result<crate::data::MlflowImports, AppError>;

    /// Starts an import from an MLflow registry in the background, as
    /// `switchyard import mlflow` runs it (admins). The form's fields as
    /// text: mappings `NAME=ENV` separated by commas or new lines,
    /// `credential` a configured source's name or empty.
    async fn start_mlflow_import(
        &self,
        form: crate::data::MlflowImportForm,
    ) -> Result<crate::data::ImportRunView, AppError>;

    /// One import with its progress (admins). Unknown here: `not_found`.
    async fn mlflow_import(&self, id: &str) -> Result<crate::data::ImportRunView, AppError>;

    /// A person's answer to a paused operation (continue, or roll back),
    /// with the same checks as `POST /api/v1/operations/{id}/continue|rollback`.
    async fn decide_operation(
        &self,
        id: i64,
        decision: Decision,
        reason: Option<&str>,
    ) -> Result<Operation, AppError>;
}

pub type DynServices = Arc<dyn Services>;

/// The services of the current request, if it comes with a valid session.
pub fn services() -> Result<DynServices, AppError> {
    use_context::<DynServices>().ok_or_else(AppError::unauthenticated)
}
