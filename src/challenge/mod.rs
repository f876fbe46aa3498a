//! Second factors and the login that leads to them: the login service
//! (`login`), TOTP (`totp`), recovery codes (`recovery`), the cooldown after a
//! revocation (`cooldown`), the bounded password hashing pool (`hashing`) and
//! the portal pages (`pages`).

pub mod cooldown;
pub mod hashing;
pub mod login;
pub mod pages;
pub mod recovery;
pub mod totp;
