//! Administration: the admin API (on its own listener with the bearer token,
//! and to administrators signed in through the portal), the rules of who may
//! act on whom, and the CLI client for it.

pub mod actor;
pub mod api;
pub mod approvers;
pub mod audit_read;
pub mod cert_issue;
pub mod certs;
pub mod client;
pub mod directory;
pub mod passes;
pub mod reply;
pub mod simulate;
pub mod users;
