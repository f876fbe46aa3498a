//! Second factors and the login that leads to them: the login service
//! (`login`), TOTP (`totp`), recovery codes (`recovery`), the cooldown after a
//! revocation (`cooldown`) and the portal pages (`pages`).

pub mod cooldown;
pub mod login;
pub mod pages;
pub mod recovery;
pub mod totp;
