//! Administration: the HTTP API on its own listener and the CLI client for it.

pub mod api;
pub mod approvers;
pub mod cert_issue;
pub mod certs;
pub mod client;
pub mod passes;
pub mod reply;
pub mod users;
