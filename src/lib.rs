//! portcullis: an access-control reverse proxy.
//!
//! The crate follows the request's path: `config` (file → runtime form),
//! `identity` (who and where the client is), `policy` (networks, conditions,
//! the decision), `portal` (pages under `/.portcullis/`), `proxy` (the only
//! module that knows Pingora), `admin` (API and CLI client).

pub mod admin;
pub mod auth;
pub mod catch_up;
pub mod challenge;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod devices;
pub mod entrance;
pub mod identity;
pub mod invitations;
pub mod live;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod notices;
pub mod policy;
pub mod portal;
pub mod proxy;
pub mod push;
pub mod replay;
pub mod state_dir;
pub mod store;
pub mod tls;
