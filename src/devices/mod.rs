//! Device certificates (issue 17): the certificates an organization hands
//! each managed PC or phone, the registry that says which of them count, and
//! the license arithmetic that bounds how many may be active and how often a
//! device may be replaced.
//!
//! Who owns what:
//! - [`registry`]: the record ([`registry::DeviceCert`], [`registry::CertStatus`])
//!   as every store backend keeps it, and the in-memory [`registry::Registry`]
//!   snapshot (fingerprint → user, status, expiry, plus a generation number)
//!   that the request path reads. The snapshot is kept current from the
//!   store's change feed ([`crate::store::Change::DeviceCert`]), never by a
//!   store lookup per request.
//! - [`quota`]: pure arithmetic, no I/O: may this certificate be issued, may
//!   this one be set expiring, expired or revoked, and the usage view. Both
//!   store backends run these rules inside their own atomic update.
//! - [`ca`]: the device CA (made in `state_dir` on first start, or configured);
//! - [`issue`]: a key and certificate per device (what it says: see there),
//!   registered through `put_device_cert`; [`pkcs12`]: the bundle (modern AES or
//!   `--legacy` 3DES) and PEM; [`link`]: single-use download links.
//!
//! The store API (both backends, atomic):
//! - `put_device_cert(cert, contracted, now) -> StoreResult<Result<(), QuotaError>>`:
//!   the license check ([`quota::check_issue`]) and the insert in one step;
//! - `update_device_cert(serial, CertUpdate, contracted, now) -> StoreResult<Result<DeviceCert, QuotaError>>`:
//!   set-expiring / expire / revoke ([`quota::apply_update`]), publishing the
//!   new record on the change feed;
//! - `device_certs() -> StoreResult<Vec<DeviceCert>>`: every record (list, usage,
//!   the snapshot at start).
//!
//! Both writes publish [`crate::store::Change::DeviceCert`] with the whole new
//! record. `crate::auth::Auth::devices` is the running instance's
//! [`registry::Registry`] (read at start and after a gap in the feed, then
//! kept current from the feed); the mTLS layer (`crate::tls::DeviceCertCallback`,
//! `crate::proxy`) parses the presented leaf once per connection (fingerprint,
//! user) and, per request, looks the fingerprint up in the current snapshot
//! (one map lookup, so a change is seen by the next request of an open connection). Status by time (expiring → expired at
//! `expires_at`, anything → expired at `not_after`) is computed from the clock
//! on every lookup (`status_at(now)`), so it needs no change on the feed.
//! The admin side is `crate::admin::certs` (list, set-expiring, expire,
//! revoke, usage) and `crate::admin::cert_issue`.

pub mod ca;
pub mod issue;
pub mod link;
pub mod pkcs12;
pub mod quota;
pub mod registry;
