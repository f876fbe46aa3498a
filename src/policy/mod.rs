//! The policy core, pure and I/O-free: named networks (`ip`), condition
//! expressions (`expr`), their time terms in the policy's zone (`time`) and
//! the per-request decision (`decide`).

pub mod decide;
pub mod expr;
pub mod ip;
pub mod time;
