//! Who and where the client is: the client IP behind trusted proxies; device
//! certificates, entrance passes and sessions join here.

pub mod client_ip;
