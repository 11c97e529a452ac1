//! One file per route.

pub mod overview_page;
