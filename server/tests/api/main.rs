//! API tests: each starts the real server (`Application::build`) on
//! 127.0.0.1:0 with a fresh SQLite file, and talks HTTP to it.

mod helpers;

mod access;
mod analysis;
mod audit;
mod clusters;
mod console;
mod console_clusters;
mod console_release;
mod console_subscriptions;
mod environments;
mod faults;
mod fuzz;
mod limits;
mod notifications;
mod onboarding;
mod operations;
mod postgres;
mod promotions;
mod release;
mod request_records;
mod resolve;
mod serving;
mod sso;
mod stages;
mod versions;
