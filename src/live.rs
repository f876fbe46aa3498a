//! The live configuration: the one [`Config`] that serves, swapped atomically
//! on reload (SIGHUP or `POST /reload`). Readers take no lock; a reload that
//! fails leaves the serving config untouched and is remembered for `/healthz`.

use crate::config::{self, Config, ConfigErrors};
use crate::tls::ServerCertResolver;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What the last reload did, for the admin API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    pub ok: bool,
    /// Unix seconds.
    pub at: u64,
    pub summary: String,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

pub struct Live {
    config: ArcSwap<Config>,
    pub cert: Arc<ServerCertResolver>,
    generation: AtomicU64,
    last: Mutex<Option<ReloadReport>>,
    /// Requests in flight, for draining on shutdown.
    pub inflight: AtomicUsize,
}

impl Live {
    pub fn new(config: Config) -> Arc<Live> {
        Arc::new(Live {
            cert: Arc::new(ServerCertResolver::new(config.server.tls.clone())),
            config: ArcSwap::from_pointee(config),
            generation: AtomicU64::new(1),
            last: Mutex::new(None),
            inflight: AtomicUsize::new(0),
        })
    }

    /// The serving config (one atomic increment, no lock).
    pub fn current(&self) -> Arc<Config> {
        self.config.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    pub fn last_reload(&self) -> Option<ReloadReport> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the config file the serving config came from.
    pub fn reload(&self) -> Result<ReloadReport, ReloadReport> {
        let old = self.current();
        let result = config::load(&old.path);
        let report = match result {
            Ok(new) => {
                let warnings = restart_needed(&old, &new);
                let summary = new.summary();
                self.cert.set(new.server.tls.clone());
                crate::logging::apply(&new.log);
                self.config.store(Arc::new(new));
                self.generation.fetch_add(1, Ordering::Relaxed);
                return_freed_memory();
                crate::audit!("config_reloaded", summary = %summary);
                for w in &warnings {
                    tracing::warn!("{w}");
                }
                report(true, summary, Vec::new(), warnings)
            }
            Err(errors) => failed(&errors),
        };
        crate::metrics::count_reload(report.ok);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
        if report.ok {
            Ok(report)
        } else {
            Err(report)
        }
    }
}

fn failed(errors: &ConfigErrors) -> ReloadReport {
    tracing::error!("config reload failed; the previous config keeps serving:\n{errors}");
    crate::audit!("config_reload_failed", errors = errors.0.len());
    let errors = errors.0.iter().map(|e| e.to_string()).collect();
    report(false, "reload failed; the previous config keeps serving".into(), errors, Vec::new())
}

fn report(ok: bool, summary: String, errors: Vec<String>, warnings: Vec<String>) -> ReloadReport {
    let at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    ReloadReport { ok, at, summary, errors, warnings }
}

/// Settings a running process cannot change: listeners and threads.
fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let mut w = Vec::new();
    let (o, n) = (&old.server, &new.server);
    if o.https != n.https || o.http != n.http || old.admin.listen != new.admin.listen {
        w.push("listener addresses changed: they take effect at the next restart".to_string());
    }
    if o.threads != n.threads || o.grace_period != n.grace_period || o.state_dir != n.state_dir || o.store != n.store {
        w.push("server.threads, grace_period, state_dir and store take effect at the next restart".to_string());
    }
    // The HTTPS listener's client-certificate check reads the device CA once, at start.
    let ca = |c: &Config| c.device_certificates.as_ref().map(|d| d.ca.clone());
    if ca(old) != ca(new) {
        w.push("[device_certificates] and its CA take effect in the TLS handshake at the next restart".to_string());
    }
    w
}

/// Hands the memory a config load freed (the parsed file, the builders of
/// the lookup tables) back to the system now: mimalloc would keep it for a
/// while, and a config of 100 000 CIDRs frees some 30 MB. Called once the
/// new config is in place; with another global allocator it does nothing
/// that matters (mimalloc's own heaps are empty then).
pub fn return_freed_memory() {
    // SAFETY: `mi_collect` takes no pointers; any thread may call it at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
