//! The switchyard server as a library, so that tests start the real thing
//! (`startup::Application::build` on port 0 with a fresh database).

/// The global allocator `switchyard serve` (and the benchmark, which runs the
/// server in-process) installs: under load glibc's malloc and free were ~10%
/// of the resolve path's CPU (perf, 2026-11-27).
pub use mimalloc::MiMalloc as Allocator;

pub mod access;
pub mod analysis;
pub mod auth;
pub mod checkpoints;
pub mod cli;
pub mod clusters;
pub mod config;
pub mod console;
pub mod demo;
pub mod drift;
pub mod drivers;
pub mod error;
pub mod jobs;
pub mod mlflow;
pub mod notify;
pub mod operations;
pub mod promotions;
pub mod release;
pub mod rest;
pub mod sso;
pub mod startup;
pub mod state;
pub mod store;
pub mod subscriptions;
pub mod telemetry;
