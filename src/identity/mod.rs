//! Who and where the client is: the client IP behind trusted proxies, the
//! signed cookies, and the session they carry; device certificates and
//! entrance passes join here.

pub mod client_ip;
pub mod cookie;
pub mod jwt;
pub mod memo;
pub mod pass;
pub mod session;
