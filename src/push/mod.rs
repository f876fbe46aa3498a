//! Push approval: "Approve login on your device".
//!
//! After the first factor (a password, or a device certificate with no
//! password), a user whose policy group allows `push` and who has an
//! approver device gets a push request instead of the TOTP form: the
//! browser shows a two-digit number and waits; the user's devices are
//! notified (server-sent events to open approver apps, Web Push to
//! subscribed ones, an optional webhook), the user picks the number on the
//! device and taps Accept, and the browser continues.
//!
//! # The approver protocol
//!
//! An approver device holds a P-256 key pair (WebCrypto, not extractable, in
//! IndexedDB; or a key file for `portcullis approver`). It signs with
//! ECDSA P-256 / SHA-256; a signature is the 64-byte `r || s` (IEEE P1363,
//! what WebCrypto produces), base64url without padding.
//!
//! Enrollment: the dashboard's "Add approval device" makes a single-use code
//! (10 minutes) shown as a QR code of
//! `https://HOST/.portcullis/approver/#enroll=CODE` (a fragment: the code
//! never reaches a log or a Referer). The app posts
//!
//! ```text
//! POST /.portcullis/api/approver/enroll
//!   {"code": CODE, "name": "Aiko's phone", "public_key": base64url(SPKI DER)}
//!   → 200 {"device": ID, "user": USER, "vapid_public_key": base64url(65-byte point)}
//! ```
//!
//! Every other approver call names the device and is signed. The signed
//! message is the UTF-8 string `portcullis-approver|PURPOSE|FIELDS…` with
//! fields joined by `|`:
//!
//! ```text
//! GET  /.portcullis/api/approver/pending?device=D&ts=T&sig=S     message: portcullis-approver|pending|D|T
//!   → {"requests": [REQUEST…]}
//! GET  /.portcullis/api/approver/events?device=D&ts=T&sig=S      message: portcullis-approver|events|D|T
//!   → text/event-stream: `event: request` (data REQUEST), `event: settled` (data {"id"}), `: keep-alive`
//! POST /.portcullis/api/approver/subscribe
//!   {"device", "ts", "sig", "subscription": {"endpoint", "keys": {"p256dh", "auth"}}}
//!                                                                 message: portcullis-approver|subscribe|D|T|ENDPOINT
//! POST /.portcullis/api/approver/decide
//!   {"device", "request", "number", "decision", "sig"}           message: portcullis-approver|decide|D|REQUEST|NUMBER|DECISION
//!   decision: "approve" | "deny" | "not_me"; NUMBER: the number picked ("" when
//!   the group turned number matching off)
//!   → 200 {"result": "approved" | "denied"}; 409 already settled or expired; 403 bad signature / wrong number
//! ```
//!
//! `ts` (Unix seconds) must be within two minutes of the server's clock.
//! A REQUEST is `{"id", "app", "host", "at", "at_local", "from", "browser",
//! "expires_at", "number_matching": bool, "choices": [three numbers, one the
//! browser's, when number matching]}`.

pub mod approver;
pub mod cli;
pub mod notify;
pub mod request;
pub mod webpush;
