//! Server functions, one concern per file. Thin: authorize, call a
//! service, map the error. Every one that uses POST names
//! `client = crate::api::client::ConsoleClient`, which sends the CSRF token
//! the server requires.

pub mod add_binding;
pub mod approve_promotion;
pub mod client;
pub mod continue_operation;
pub mod create_subscription;
pub mod delete_subscription;
pub mod get_access;
pub mod get_analysis;
pub mod get_approvals;
pub mod get_audit_page;
pub mod get_board;
pub mod get_cluster;
pub mod get_clusters;
pub mod get_freezes;
pub mod get_model_page;
pub mod get_notification_status;
pub mod get_operation;
pub mod get_overview;
pub mod get_serving_at;
pub mod get_sign_in_options;
pub mod get_signed_in_user;
pub mod get_subscription;
pub mod get_subscriptions;
pub mod get_version_detail;
pub mod lookup_request;
pub mod move_stage;
pub mod redeliver;
pub mod reject_promotion;
pub mod remove_analysis_template;
pub mod remove_binding;
pub mod request_promotion;
pub mod roll_back_cluster;
pub mod roll_back_operation;
pub mod rotate_subscription_secret;
pub mod save_analysis_template;
pub mod send_test_message;
pub mod set_cluster_analysis;
pub mod start_operation;
pub mod verify_audit_chain;

/// A query value as given, or none when it is blank (`?model=`).
pub fn given(v: Option<String>) -> Option<String> {
    v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}
