//! One file per route.

pub mod overview_page;
pub mod signin_page;
