//! The policy core, pure and I/O-free: named networks (`ip`), condition
//! expressions (`expr`) and the per-request decision (`decide`).

pub mod decide;
pub mod expr;
pub mod ip;
