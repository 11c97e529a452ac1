//! Server functions, one concern per file. Thin: authorize, call a
//! service, map the error.

pub mod get_overview;
