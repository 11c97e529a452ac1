//! Server functions, one concern per file. Thin: authorize, call a
//! service, map the error. Every one that uses POST names
//! `client = crate::api::client::ConsoleClient`, which sends the CSRF token
//! the server requires.

pub mod client;
pub mod get_overview;
pub mod get_signed_in_user;
