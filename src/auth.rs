//! The runtime side of sign-in that the request path reads: the cookie key
//! ring, the revocation snapshot, the clock, and the login service with its
//! store. Built once at start; the snapshot is kept current from the store's
//! change feed by [`Auth::follow_changes`], so checking a session costs an
//! HMAC and a hash lookup, never a store round trip.

use crate::challenge::login::LoginService;
use crate::challenge::totp::SecretBox;
use crate::clock::{Clock, SystemClock};
use crate::config::{hosts::AppId, Config};
use crate::identity::cookie::KeyRing;
use crate::identity::session::{Session, SessionLevel, SESSION_COOKIE};
use crate::policy::decide::{Level, SessionFacts};
use crate::store::{Change, Revocations, SharedStore};
use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

pub struct Auth {
    pub keys: ArcSwap<KeyRing>,
    pub revocations: ArcSwap<Revocations>,
    pub clock: Arc<dyn Clock>,
    pub login: LoginService,
}

/// A request's valid session, with what the decision needs.
#[derive(Debug, Clone)]
pub struct ValidSession {
    pub session: Session,
    pub facts: SessionFacts,
    /// The cookie should be re-issued (idle timeout refresh).
    pub refresh: bool,
}

impl Auth {
    /// Opens the keys and secrets in `state_dir` (creating them on first start).
    pub fn open(state_dir: &Path, store: SharedStore, clock: Arc<dyn Clock>) -> Result<Auth, String> {
        let keys = KeyRing::load_or_create(&state_dir.join("cookie.keys"))?;
        let secrets_path = state_dir.join("secrets.key");
        let secrets = SecretBox::load_or_create(&secrets_path)?;
        let pepper = pepper(&std::fs::read(&secrets_path).map_err(|e| e.to_string())?);
        Ok(Auth {
            keys: ArcSwap::from_pointee(keys),
            revocations: ArcSwap::from_pointee(Revocations::default()),
            clock: clock.clone(),
            login: LoginService::new(store, clock, secrets, pepper),
        })
    }

    pub fn system(state_dir: &Path, store: SharedStore) -> Result<Auth, String> {
        Auth::open(state_dir, store, Arc::new(SystemClock))
    }

    pub fn store(&self) -> &SharedStore {
        &self.login.store
    }

    /// The session a request carries for `app`, if it is valid now.
    pub fn session<'a>(
        &self,
        cfg: &Config,
        app: AppId,
        cookies: impl Iterator<Item = &'a [u8]>,
    ) -> Option<ValidSession> {
        let value = crate::identity::cookie::find_cookie(cookies, SESSION_COOKIE)?;
        let app = cfg.app(app);
        let now = self.clock.now();
        // The idle timeout is the user's group's; read the user first from the payload.
        let keys = self.keys.load();
        let s = Session::from_cookie(value, &keys, &app.name, now, u64::MAX / 4).ok()?;
        let user = cfg.users.get(&s.user)?;
        let idle = cfg.groups[user.policy_group].idle_timeout.as_secs();
        if now >= s.seen_at.saturating_add(idle) || !self.revocations.load().allows(&s.user, &s.id, s.issued_at) {
            return None;
        }
        let level = match s.level {
            SessionLevel::FirstFactor => Level::FirstFactor,
            SessionLevel::BothFactors => Level::BothFactors,
        };
        let refresh = s.needs_refresh(now, idle);
        Some(ValidSession { facts: SessionFacts { group: user.policy_group, level }, session: s, refresh })
    }

    /// Ends this session (logout); with `everywhere`, every session of the user.
    pub async fn sign_out(&self, s: &Session, everywhere: bool) -> Result<(), crate::store::StoreError> {
        self.store().revoke_session(&s.id, s.expires_at).await?;
        self.apply_now(&Change::SessionRevoked { id: s.id.clone(), until: s.expires_at });
        if everywhere {
            self.sign_out_everywhere(&s.user).await?;
        }
        Ok(())
    }

    /// Voids every session of `user` issued until now (this very second included).
    pub async fn sign_out_everywhere(&self, user: &str) -> Result<(), crate::store::StoreError> {
        let at = self.clock.now() + 1;
        self.store().sign_out_everywhere(user, at).await?;
        self.apply_now(&Change::SessionsNotBefore { user: user.to_string(), at });
        Ok(())
    }

    /// Applies a change made here at once, so the very next request sees it
    /// (the change feed brings the same change again; applying is idempotent).
    pub fn apply_now(&self, change: &Change) {
        let mut next = (**self.revocations.load()).clone();
        next.apply(change);
        self.revocations.store(Arc::new(next));
    }

    /// Reads the store's revocations in full (at start, and after a reconnect).
    pub async fn reload_revocations(&self) -> Result<(), crate::store::StoreError> {
        let r = self.store().revocations().await?;
        self.revocations.store(Arc::new(r));
        Ok(())
    }

    /// Applies the store's change feed to the snapshot, forever (a background task).
    pub async fn follow_changes(self: Arc<Self>) {
        let mut rx = self.store().subscribe();
        loop {
            match rx.recv().await {
                Ok(Change::Resync) => {
                    let _ = self.reload_revocations().await;
                }
                Ok(change) => self.apply_now(&change),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let _ = self.reload_revocations().await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// The recovery-code pepper, derived from the secrets key so there is one file to protect.
fn pepper(secret_key_file: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"portcullis recovery-code pepper\0");
    h.update(secret_key_file);
    h.finalize().into()
}
