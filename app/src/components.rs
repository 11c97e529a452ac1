//! Pieces shared by pages.

pub mod layout;
pub mod stage_badge;
