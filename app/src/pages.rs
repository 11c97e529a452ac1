//! One file per route.

pub mod access_page;
pub mod analysis_page;
pub mod approvals_page;
pub mod audit_page;
pub mod board_page;
pub mod clusters_page;
pub mod confirm_operation_page;
pub mod connection_test_page;
pub mod import_page;
pub mod model_page;
pub mod overview_page;
pub mod release_page;
pub mod request_page;
pub mod serving_page;
pub mod signin_page;
pub mod subscriptions_page;
pub mod version_page;
