//! Pieces shared by pages.

pub mod layout;
pub mod pending_approvals;
pub mod stage_badge;
pub mod status;
pub mod timeline;
