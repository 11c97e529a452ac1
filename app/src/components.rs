//! Pieces shared by pages.

pub mod cluster_alerts;
pub mod cluster_card;
pub mod driver_config;
pub mod form;
pub mod freeze_banner;
pub mod gate_results;
pub mod layout;
pub mod measurement_chart;
pub mod notification_alerts;
pub mod pending_approvals;
pub mod stage_badge;
pub mod status;
pub mod table;
pub mod timeline;
