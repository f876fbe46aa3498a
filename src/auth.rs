//! The runtime side of sign-in that the request path reads: the cookie key
//! ring, the revocation snapshot, the device-certificate registry snapshot,
//! the clock, and the login service with its store. Built once at start; the
//! snapshots are kept current from the store's change feed by
//! [`Auth::follow_changes`], so checking a session costs an HMAC and a hash
//! lookup, and a device certificate a hash lookup, never a store round trip.

use crate::challenge::login::LoginService;
use crate::clock::{Clock, SystemClock};
use crate::config::{hosts::AppId, Config};
use crate::devices::registry::Registry;
use crate::identity::cookie::KeyRing;
use crate::identity::jwt::{IdentityKeys, TokenCache};
use crate::identity::session::{Session, SessionLevel, SESSION_COOKIE};
use crate::policy::decide::{Level, SessionFacts};
use crate::store::secrets::Secrets;
use crate::store::{Change, Revocations, SharedStore};
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Auth {
    pub keys: ArcSwap<KeyRing>,
    /// Shared with the login service, which checks a session being stepped up.
    pub revocations: Arc<ArcSwap<Revocations>>,
    /// Device certificates by fingerprint, with a generation (see [`Registry`]).
    pub devices: ArcSwap<Registry>,
    pub clock: Arc<dyn Clock>,
    pub login: LoginService,
    /// Entrance-pass uses not yet written to the store (see `entrance`).
    pub(crate) pass_uses: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// Push requests made and answered, on any instance (from the change
    /// feed): approver apps and waiting browsers listen here.
    pub push_events: tokio::sync::broadcast::Sender<Change>,
    /// For Web Push and the push webhook.
    pub http: reqwest::Client,
    /// The VAPID key Web Push messages are signed with, one for all
    /// instances (sealed in the store); set by [`Auth::start`].
    pub vapid: arc_swap::ArcSwapOption<crate::push::webpush::VapidKeys>,
    /// Whether the snapshot may be behind the store (a gap in the change feed).
    pub catch_up: crate::catch_up::CatchUp,
    /// The keys of the signed identity for apps (`identity::jwt`): sealed in
    /// the store, one ring for all instances; rotated with the cookie keys.
    pub identity_keys: ArcSwap<IdentityKeys>,
    /// Signed identity tokens, reused until shortly before they expire.
    pub identity_tokens: TokenCache,
    secrets: Secrets,
    keys_file: Option<PathBuf>,
}

/// The store setting holding the sealed cookie key ring (shared stores).
const KEYS_SETTING: &str = "cookie-keys";
/// The store setting holding the sealed signing keys of the identity for apps.
const IDENTITY_KEYS_SETTING: &str = "identity-keys";
/// The store setting holding the sealed VAPID key (Web Push).
const VAPID_SETTING: &str = "vapid-key";
/// The store setting proving every instance has the same `secrets.key`.
const KEY_CHECK_SETTING: &str = "secrets-key-check";
/// How often revocations of sessions that have expired anyway are forgotten.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// A request's valid session, with what the decision needs.
#[derive(Debug, Clone)]
pub struct ValidSession {
    /// Shared with this thread's memo of verified cookies: copy it to change it.
    pub session: Arc<Session>,
    pub facts: SessionFacts,
    /// The user's groups among those conditions name (`group("…")`).
    pub groups: crate::policy::expr::GroupMask,
    /// The cookie should be re-issued (idle timeout refresh).
    pub refresh: bool,
}

thread_local! {
    /// Session cookies this worker thread has verified (see `identity::memo`).
    static SESSION_MEMO: std::cell::RefCell<crate::identity::memo::Memo<Session>> = Default::default();
}

impl Auth {
    /// Opens the secrets in `state_dir` (creating them on first start). With a
    /// store of one node the cookie keys live in `state_dir/cookie.keys`; with a
    /// `shared` store (Redis) they live, sealed, in the store: see [`Auth::start`].
    pub fn open(state_dir: &Path, store: SharedStore, clock: Arc<dyn Clock>) -> Result<Auth, String> {
        Auth::with(Secrets::load_or_create(state_dir)?, Some(state_dir.join("cookie.keys")), store, clock)
    }

    pub fn with(
        secrets: Secrets,
        keys_file: Option<PathBuf>,
        store: SharedStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Auth, String> {
        let keys = match &keys_file {
            Some(path) => KeyRing::load_or_create(path)?,
            None => KeyRing::generate(),
        };
        let pepper = secrets.derive("recovery-code pepper");
        let revocations = Arc::new(ArcSwap::from_pointee(Revocations::default()));
        let login =
            LoginService::new(store, clock.clone(), secrets.sealer.clone(), pepper).with_revocations(&revocations);
        Ok(Auth {
            keys: ArcSwap::from_pointee(keys),
            revocations,
            devices: ArcSwap::from_pointee(Registry::default()),
            clock: clock.clone(),
            login,
            pass_uses: std::sync::Mutex::default(),
            push_events: tokio::sync::broadcast::channel(1024).0,
            http: crate::push::webpush::client().map_err(|e| format!("HTTP client: {e}"))?,
            vapid: arc_swap::ArcSwapOption::empty(),
            catch_up: crate::catch_up::CatchUp::default(),
            identity_keys: ArcSwap::from_pointee(IdentityKeys::generate()),
            identity_tokens: TokenCache::default(),
            secrets,
            keys_file,
        })
    }

    pub fn system(state_dir: &Path, store: SharedStore) -> Result<Auth, String> {
        Auth::open(state_dir, store, Arc::new(SystemClock))
    }

    /// Before the first request: checks that this instance's secrets match the
    /// store's, loads shared cookie keys, and reads the revocations.
    pub async fn start(&self) -> Result<(), String> {
        let check = self.secrets.derive("key check");
        let store = self.store();
        let e = |e: crate::store::StoreError| format!("state store: {e}");
        store.put_setting(KEY_CHECK_SETTING, &check, true).await.map_err(e)?;
        if store.setting(KEY_CHECK_SETTING).await.map_err(e)?.as_deref() != Some(&check[..]) {
            return Err("state_dir/secrets.key differs from the one the other instances sharing this store use: copy the same file to every instance".into());
        }
        if self.keys_file.is_none() {
            let fresh = self.secrets.sealer.seal(KeyRing::generate().to_json().as_bytes(), KEYS_SETTING.as_bytes());
            store.put_setting(KEYS_SETTING, &fresh, true).await.map_err(e)?;
            self.load_shared_keys().await?;
        }
        self.reload_revocations().await.map_err(e)?;
        self.reload_devices().await.map_err(e)?;
        // The first instance's ring is everyone's (the store keeps the first written).
        let fresh =
            self.secrets.sealer.seal(IdentityKeys::generate().to_json().as_bytes(), IDENTITY_KEYS_SETTING.as_bytes());
        store.put_setting(IDENTITY_KEYS_SETTING, &fresh, true).await.map_err(e)?;
        self.load_identity_keys().await?;
        self.load_vapid().await
    }

    /// Reads the identity keys from the store (at start, after a rotation
    /// anywhere, after a gap in the change feed).
    async fn load_identity_keys(&self) -> Result<(), String> {
        let sealed = self
            .store()
            .setting(IDENTITY_KEYS_SETTING)
            .await
            .map_err(|e| format!("state store: {e}"))?
            .ok_or("no identity keys in the store")?;
        let json = self
            .secrets
            .sealer
            .open(&sealed, IDENTITY_KEYS_SETTING.as_bytes())
            .map_err(|e| format!("identity keys in the store: {e}"))?;
        let keys = IdentityKeys::from_json(&String::from_utf8_lossy(&json))?;
        self.identity_keys.store(Arc::new(keys));
        Ok(())
    }

    /// The signed identity (`[identity] jwt`) of a request to `app` with
    /// session `s`; `None` when switched off or the user is gone.
    pub fn identity_token(&self, cfg: &Config, app: &crate::config::App, s: &Session) -> Option<http::HeaderValue> {
        let settings = cfg.identity.jwt.as_ref()?;
        let user = cfg.users.get(&s.user)?;
        let req = crate::identity::jwt::Request {
            session: s,
            app: &app.name,
            issuer: &settings.issuer,
            email: user.email.as_deref(),
            groups: &user.groups,
            lifetime_secs: settings.lifetime.as_secs(),
            // A reload may change the claims: tokens of the old config are not reused.
            config_tag: cfg as *const Config as usize,
        };
        Some(self.identity_tokens.token(&self.identity_keys.load(), &req, self.clock.now()))
    }

    /// The VAPID key pair: made by the first instance, sealed in the store.
    async fn load_vapid(&self) -> Result<(), String> {
        let store = self.store();
        let e = |e: crate::store::StoreError| format!("state store: {e}");
        let fresh = crate::push::webpush::VapidKeys::generate();
        let sealed = self.secrets.sealer.seal(&fresh.to_raw(), VAPID_SETTING.as_bytes());
        store.put_setting(VAPID_SETTING, &sealed, true).await.map_err(e)?;
        let sealed = store.setting(VAPID_SETTING).await.map_err(e)?.ok_or("no VAPID key in the store")?;
        let raw = self.secrets.sealer.open(&sealed, VAPID_SETTING.as_bytes()).map_err(|e| format!("VAPID key: {e}"))?;
        let keys = crate::push::webpush::VapidKeys::from_raw(&raw).map_err(|e| format!("VAPID key: {e}"))?;
        self.vapid.store(Some(Arc::new(keys)));
        Ok(())
    }

    /// The VAPID public key approver apps subscribe with (base64url), or "".
    pub fn vapid_public_key(&self) -> String {
        self.vapid.load().as_ref().map(|k| k.public_key_base64url()).unwrap_or_default()
    }

    async fn load_shared_keys(&self) -> Result<(), String> {
        let sealed = self
            .store()
            .setting(KEYS_SETTING)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no cookie keys in the store")?;
        let json = self
            .secrets
            .sealer
            .open(&sealed, KEYS_SETTING.as_bytes())
            .map_err(|e| format!("cookie keys in the store: {e}"))?;
        let ring = KeyRing::from_json(&String::from_utf8_lossy(&json))
            .map_err(|e| format!("cookie keys in the store: {e}"))?;
        self.keys.store(Arc::new(ring));
        Ok(())
    }

    /// A new current cookie key (the previous one still verifies); every instance follows.
    pub async fn rotate_keys(&self) -> Result<u32, String> {
        let next = self.keys.load().rotate();
        match &self.keys_file {
            Some(path) => next.save(path)?,
            None => {
                let sealed = self.secrets.sealer.seal(next.to_json().as_bytes(), KEYS_SETTING.as_bytes());
                self.store().put_setting(KEYS_SETTING, &sealed, false).await.map_err(|e| e.to_string())?;
            }
        }
        let id = next.current_id();
        self.keys.store(Arc::new(next));
        self.rotate_identity_keys().await?;
        Ok(id)
    }

    /// A new current identity signing key; the previous one stays in the
    /// published set until the next rotation. Every instance follows (feed).
    async fn rotate_identity_keys(&self) -> Result<(), String> {
        let next = self.identity_keys.load().rotate();
        let sealed = self.secrets.sealer.seal(next.to_json().as_bytes(), IDENTITY_KEYS_SETTING.as_bytes());
        self.store().put_setting(IDENTITY_KEYS_SETTING, &sealed, false).await.map_err(|e| e.to_string())?;
        self.identity_keys.store(Arc::new(next));
        Ok(())
    }

    pub fn store(&self) -> &SharedStore {
        &self.login.store
    }

    /// Seals short-lived state that must not sit in the store readable (the
    /// recovery codes between the form that made them and the page showing
    /// them), bound to `context`.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> Vec<u8> {
        self.secrets.sealer.seal(plain, context)
    }

    /// Opens what [`Auth::seal`] sealed under the same `context`.
    pub fn unseal(&self, sealed: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        self.secrets.sealer.open(sealed, context).ok()
    }

    /// The session a request carries for `app`, if it is valid now.
    pub fn session<'a>(
        &self,
        cfg: &Config,
        app: AppId,
        cookies: impl Iterator<Item = &'a [u8]>,
    ) -> Option<ValidSession> {
        self.session_in(cfg, app, SESSION_COOKIE, cookies)
    }

    /// [`Auth::session`] from the cookie `name` (the certificate-login
    /// listener keeps its logins in a cookie of its own).
    pub fn session_in<'a>(
        &self,
        cfg: &Config,
        app: AppId,
        name: &str,
        cookies: impl Iterator<Item = &'a [u8]>,
    ) -> Option<ValidSession> {
        let value = crate::identity::cookie::find_cookie(cookies, name)?;
        let app = cfg.app(app);
        let now = self.clock.now();
        // The idle timeout is the user's group's; read the user first from the payload.
        let keys = self.keys.load();
        // Verified once per value and thread (see `identity::memo`); judged
        // at `now` on every request.
        let s =
            SESSION_MEMO.with_borrow_mut(|memo| memo.get_or_verify(value, &keys, || Session::verified(value, &keys)));
        let s = s.ok()?;
        s.check(&app.name, now, u64::MAX / 4).ok()?;
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
        let facts = SessionFacts { group: user.policy_group, level };
        Some(ValidSession { facts, groups: user.group_mask, session: s, refresh })
    }

    /// The `Set-Cookie` re-issuing session `s` as seen now (the sliding idle timeout).
    pub fn refreshed_session_cookie(&self, s: &Session) -> String {
        let mut fresh = s.clone();
        fresh.seen_at = self.clock.now();
        let max_age = fresh.expires_at.saturating_sub(fresh.seen_at);
        let value = fresh.to_cookie(&self.keys.load());
        crate::identity::cookie::set_cookie(crate::identity::session::SESSION_COOKIE, &value, Some(max_age))
    }

    /// Ends this session (logout); with `everywhere`, every session of the user.
    pub async fn sign_out(&self, s: &Session, everywhere: bool) -> Result<(), crate::store::StoreError> {
        self.store().revoke_session(&s.id, s.expires_at).await?;
        self.apply_now(&Change::SessionRevoked { id: s.id.clone(), until: s.expires_at });
        crate::audit!("signed_out", user = %s.user, session = %s.id, everywhere);
        if everywhere {
            self.sign_out_everywhere(&s.user).await?;
        }
        Ok(())
    }

    /// Voids every session of `user` issued until now (this very second included).
    /// Also revokes the user's entrance passes: whoever signs a user out
    /// everywhere (a lost laptop, a revoked authenticator) means the browsers too.
    pub async fn sign_out_everywhere(&self, user: &str) -> Result<(), crate::store::StoreError> {
        let at = self.store().sign_out_everywhere(user, self.clock.now() + 1).await?;
        self.apply_now(&Change::SessionsNotBefore { user: user.to_string(), at });
        self.revoke_passes_of(user).await?;
        Ok(())
    }

    /// Applies a change made here at once, so the very next request sees it
    /// (the change feed brings the same change again; applying is idempotent).
    /// The new snapshot shares all but O(log n) of the old one (see
    /// [`Revocations`]); `rcu` retries when another change landed meanwhile,
    /// so two changes applied at once are both kept.
    pub fn apply_now(&self, change: &Change) {
        if let Change::DeviceCert(_) = change {
            self.devices.rcu(|current| {
                let mut next = Registry::clone(current);
                next.apply(change);
                next
            });
            return;
        }
        self.revocations.rcu(|current| {
            let mut next = Revocations::clone(current);
            next.apply(change);
            next
        });
    }

    /// Forgets revocations of sessions that would have expired by now anyway
    /// (their cookies are refused for their age); returns how many.
    pub fn prune_revocations(&self) -> usize {
        let now = self.clock.now();
        if self.revocations.load().revoked_sessions.is_empty() {
            return 0;
        }
        let mut pruned = 0;
        self.revocations.rcu(|current| {
            let mut next = Revocations::clone(current);
            pruned = next.revoked_sessions.prune(now);
            next
        });
        pruned
    }

    /// Reads the store's revocations in full (at start, and after a reconnect).
    pub async fn reload_revocations(&self) -> Result<(), crate::store::StoreError> {
        let r = self.store().revocations().await?;
        self.revocations.store(Arc::new(r));
        Ok(())
    }

    /// Reads the device-certificate registry in full (at start, and after a
    /// gap in the feed); the generation moves on, so connections look again.
    pub async fn reload_devices(&self) -> Result<(), crate::store::StoreError> {
        let certs = self.store().device_certs().await?;
        self.devices.rcu(|current| Registry::from_certs(&certs, current.generation() + 1));
        Ok(())
    }

    /// Reads everything the feed may have missed, retrying while the store is
    /// still coming back (the feed can reconnect before commands can).
    async fn resync(&self) {
        self.catch_up.lost();
        for attempt in 0..40 {
            let keys_ok = self.keys_file.is_some() || self.load_shared_keys().await.is_ok();
            let keys_ok = keys_ok && self.load_identity_keys().await.is_ok();
            if keys_ok && self.reload_revocations().await.is_ok() && self.reload_devices().await.is_ok() {
                self.catch_up.caught_up();
                tracing::info!("revocations and device certificates re-read in full after a gap in the change feed");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250 + 50 * attempt)).await;
        }
        tracing::error!(
            "could not re-read revocations after a gap in the change feed; will retry on the next reconnect"
        );
    }

    /// Applies the store's change feed to the snapshot, forever (a background task).
    /// Also forgets expired revocations every [`PRUNE_EVERY`].
    pub async fn follow_changes(self: Arc<Self>) {
        let mut rx = self.store().subscribe();
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                _ = prune.tick() => {
                    self.prune_revocations();
                    // Its own task: a slow store never holds up revocations.
                    let me = self.clone();
                    tokio::spawn(async move { me.flush_pass_uses().await });
                    continue;
                }
            };
            match received {
                Ok(Change::Resync) => self.resync().await,
                Ok(Change::FeedLost) => self.catch_up.lost(),
                Ok(Change::SettingChanged { name }) if name == KEYS_SETTING && self.keys_file.is_none() => {
                    if let Err(e) = self.load_shared_keys().await {
                        tracing::error!("cannot load rotated cookie keys: {e}");
                    }
                }
                Ok(Change::SettingChanged { name }) if name == IDENTITY_KEYS_SETTING => {
                    if let Err(e) = self.load_identity_keys().await {
                        tracing::error!("cannot load rotated identity keys: {e}");
                    }
                }
                Ok(change @ (Change::PushRequested { .. } | Change::PushSettled { .. })) => {
                    // Nobody listening is fine.
                    let _ = self.push_events.send(change);
                }
                Ok(change) => self.apply_now(&change),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.resync().await,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::embedded::EmbeddedStore;

    fn auth(clock: Arc<ManualClock>) -> (Auth, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        (Auth::open(dir.path(), store, clock).unwrap(), dir)
    }

    fn revoked(id: String, until: u64) -> Change {
        Change::SessionRevoked { id, until }
    }

    #[tokio::test]
    async fn expired_revocations_are_pruned_and_live_ones_kept() {
        let clock = ManualClock::new(1_000);
        let (auth, _dir) = auth(clock.clone());
        auth.apply_now(&revoked("ends-soon".into(), 1_100));
        auth.apply_now(&revoked("ends-later".into(), 5_000));
        assert_eq!(auth.prune_revocations(), 0);
        clock.set(1_100);
        assert_eq!(auth.prune_revocations(), 1, "a session expired anyway needs no revocation");
        let r = auth.revocations.load();
        assert!(!r.revoked_sessions.contains("ends-soon") && r.revoked_sessions.contains("ends-later"));
        assert!(!r.allows("u", "ends-later", 1_000));
    }

    #[tokio::test]
    async fn follow_changes_prunes_on_its_own() {
        let clock = ManualClock::new(1_000);
        let (auth, _dir) = auth(clock.clone());
        let auth = Arc::new(auth);
        auth.apply_now(&revoked("old".into(), 1_001));
        clock.set(2_000);
        let follower = tokio::spawn(auth.clone().follow_changes());
        for _ in 0..200 {
            if auth.revocations.load().revoked_sessions.is_empty() {
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        follower.abort();
        assert!(auth.revocations.load().revoked_sessions.is_empty(), "pruned at the follower's first tick");
    }

    #[test]
    fn changes_applied_at_once_are_all_kept() {
        let (auth, _dir) = auth(ManualClock::new(1_000));
        std::thread::scope(|s| {
            for t in 0..4 {
                let auth = &auth;
                s.spawn(move || (0..500).for_each(|i| auth.apply_now(&revoked(format!("{t}-{i}"), 9_000))));
            }
        });
        assert_eq!(auth.revocations.load().revoked_sessions.len(), 2_000, "no change lost to another");
    }
}

#[cfg(test)]
mod device_tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::devices::registry::{CertStatus, CertUpdate, DeviceCert};
    use crate::store::embedded::EmbeddedStore;

    fn cert(serial: &str) -> DeviceCert {
        DeviceCert {
            serial: serial.into(),
            fingerprint: format!("fp-{serial}"),
            user: "ann".into(),
            device: "laptop".into(),
            issued_at: 1_000,
            not_after: 1_000_000,
            status: CertStatus::Active,
            expires_at: None,
            set_expiring_at: None,
        }
    }

    /// The registry snapshot is read at start and then follows the feed:
    /// a revocation is seen without a store read, and moves the generation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registry_snapshot_follows_the_change_feed() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        store.put_device_cert(cert("a"), 5, 1_000).await.unwrap().unwrap();
        let auth = Arc::new(Auth::open(dir.path(), store.clone(), ManualClock::new(1_000)).unwrap());
        auth.start().await.unwrap();
        let started = auth.devices.load().generation();
        assert_eq!(auth.devices.load().lookup("fp-a", 1_000), Some(("ann", CertStatus::Active)));
        let follower = tokio::spawn(auth.clone().follow_changes());
        // The follower subscribes when it first runs; the feed has no replay.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        store.update_device_cert("a", CertUpdate::Revoke, 5, 1_001).await.unwrap().unwrap();
        for _ in 0..400 {
            if auth.devices.load().generation() > started {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        follower.abort();
        assert_eq!(auth.devices.load().lookup("fp-a", 1_001), Some(("ann", CertStatus::Revoked)));
    }
}
