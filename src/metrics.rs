//! Prometheus metrics, kept as plain atomics so the request path never takes a
//! lock: per-app counters by decision, one latency histogram, reload counts.
//! Counters live in a process-wide registry keyed by app name, so a reload that
//! keeps an app keeps its counts (Prometheus counters must not go backwards).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// What happened to a request, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Forward = 0,
    Challenge = 1,
    Deny = 2,
    Portal = 3,
}

const OUTCOMES: [(&str, Outcome); 4] = [
    ("forward", Outcome::Forward),
    ("challenge", Outcome::Challenge),
    ("deny", Outcome::Deny),
    ("portal", Outcome::Portal),
];

impl Outcome {
    /// The name metrics and the access log use.
    pub fn name(self) -> &'static str {
        OUTCOMES[self as usize].0
    }
}

#[derive(Debug, Default)]
pub struct AppCounters([AtomicU64; 4]);

impl AppCounters {
    pub fn count(&self, o: Outcome) {
        self.0[o as usize].fetch_add(1, Relaxed);
    }
    pub fn get(&self, o: Outcome) -> u64 {
        self.0[o as usize].load(Relaxed)
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

#[derive(Default)]
struct Registry {
    apps: Mutex<BTreeMap<String, Arc<AppCounters>>>,
    unknown_host: AtomicU64,
    refused: AtomicU64,
    latency: Histogram,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    guesses: GuessCounters,
}

/// Guesses at a password or code: checked, or refused unchecked (locked or
/// over the limit); password hashes computed, and logins turned away because
/// the hashing pool was full.
#[derive(Default)]
struct GuessCounters {
    checked: AtomicU64,
    refused: AtomicU64,
    hashes: AtomicU64,
    hashing_busy: AtomicU64,
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
}

/// The counters of an app by name, created on first use (called at config load, not per request).
pub fn app_counters(name: &str) -> Arc<AppCounters> {
    let mut apps = registry().apps.lock().unwrap_or_else(|e| e.into_inner());
    apps.entry(name.to_string()).or_default().clone()
}

pub fn count_unknown_host() {
    registry().unknown_host.fetch_add(1, Relaxed);
}

/// A request refused before its host was looked at: bad framing, a path with
/// two readings, or over the size limits.
pub fn count_refused() {
    registry().refused.fetch_add(1, Relaxed);
}

pub fn observe_latency(d: Duration) {
    let h = &registry().latency;
    let secs = d.as_secs_f64();
    if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
        h.buckets[i].fetch_add(1, Relaxed);
    }
    h.count.fetch_add(1, Relaxed);
    h.sum_nanos.fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
}

pub fn count_reload(ok: bool) {
    let r = registry();
    if ok { &r.reloads_ok } else { &r.reloads_failed }.fetch_add(1, Relaxed);
}

/// A guess at a factor: `checked` when it was evaluated, else refused unchecked.
pub fn count_guess(checked: bool) {
    let g = &registry().guesses;
    if checked { &g.checked } else { &g.refused }.fetch_add(1, Relaxed);
}

/// One argon2 verification run (real or the dummy one for unknown users).
pub fn count_password_hash() {
    registry().guesses.hashes.fetch_add(1, Relaxed);
}

/// A login answered 503 because the password hashing pool was full.
pub fn count_hashing_busy() {
    registry().guesses.hashing_busy.fetch_add(1, Relaxed);
}

fn render_guesses(out: &mut String, g: &GuessCounters) {
    out.push_str("# HELP portcullis_guesses_total Guesses at a password or code, checked or refused unchecked.\n# TYPE portcullis_guesses_total counter\n");
    let _ = writeln!(out, "portcullis_guesses_total{{result=\"checked\"}} {}", g.checked.load(Relaxed));
    let _ = writeln!(out, "portcullis_guesses_total{{result=\"refused\"}} {}", g.refused.load(Relaxed));
    out.push_str("# HELP portcullis_password_hashes_total argon2 verifications run.\n# TYPE portcullis_password_hashes_total counter\n");
    let _ = writeln!(out, "portcullis_password_hashes_total {}", g.hashes.load(Relaxed));
    out.push_str("# HELP portcullis_password_hashing_busy_total Logins answered 503 because the hashing pool was full.\n# TYPE portcullis_password_hashing_busy_total counter\n");
    let _ = writeln!(out, "portcullis_password_hashing_busy_total {}", g.hashing_busy.load(Relaxed));
}

/// The Prometheus text exposition of everything above.
pub fn render() -> String {
    let r = registry();
    let mut out = String::new();
    out.push_str(
        "# HELP portcullis_requests_total Requests by app and decision.\n# TYPE portcullis_requests_total counter\n",
    );
    for (name, c) in r.apps.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        for (label, o) in OUTCOMES {
            let _ = writeln!(
                out,
                "portcullis_requests_total{{app=\"{}\",decision=\"{label}\"}} {}",
                escape(name),
                c.get(o)
            );
        }
    }
    let _ = writeln!(
        out,
        "portcullis_requests_total{{app=\"\",decision=\"unknown_host\"}} {}",
        r.unknown_host.load(Relaxed)
    );
    let _ = writeln!(out, "portcullis_requests_total{{app=\"\",decision=\"refused\"}} {}", r.refused.load(Relaxed));
    out.push_str("# HELP portcullis_request_duration_seconds Time from request to response end.\n# TYPE portcullis_request_duration_seconds histogram\n");
    let mut cumulative = 0;
    for (i, b) in BUCKETS.iter().enumerate() {
        cumulative += r.latency.buckets[i].load(Relaxed);
        let _ = writeln!(out, "portcullis_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}");
    }
    let count = r.latency.count.load(Relaxed);
    let _ = writeln!(out, "portcullis_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "portcullis_request_duration_seconds_sum {}", r.latency.sum_nanos.load(Relaxed) as f64 / 1e9);
    let _ = writeln!(out, "portcullis_request_duration_seconds_count {count}");
    out.push_str("# HELP portcullis_config_reloads_total Config reloads by result.\n# TYPE portcullis_config_reloads_total counter\n");
    let _ = writeln!(out, "portcullis_config_reloads_total{{result=\"ok\"}} {}", r.reloads_ok.load(Relaxed));
    let _ = writeln!(out, "portcullis_config_reloads_total{{result=\"failed\"}} {}", r.reloads_failed.load(Relaxed));
    render_guesses(&mut out, &r.guesses);
    out
}

/// Device certificates by status at `now` (from the registry snapshot, so a
/// scrape costs no store read), and how many stop working within 14 days.
pub fn render_device_certs(out: &mut String, registry: &crate::devices::registry::Registry, now: u64) {
    use crate::devices::registry::{CertStatus, WARN_WITHIN};
    let mut by_status = [0u64; 4];
    let mut soon = 0;
    for e in registry.entries() {
        by_status[e.status_at(now) as usize] += 1;
        soon += u64::from(e.stops_within(now, WARN_WITHIN));
    }
    out.push_str("# HELP portcullis_device_certificates Registered device certificates by status.\n# TYPE portcullis_device_certificates gauge\n");
    for s in [CertStatus::Active, CertStatus::Expiring, CertStatus::Expired, CertStatus::Revoked] {
        let _ = writeln!(out, "portcullis_device_certificates{{status=\"{s}\"}} {}", by_status[s as usize]);
    }
    out.push_str("# HELP portcullis_device_certificates_expiring_within_14d Working device certificates that stop working within 14 days.\n# TYPE portcullis_device_certificates_expiring_within_14d gauge\n");
    let _ = writeln!(out, "portcullis_device_certificates_expiring_within_14d {soon}");
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_a_reload_and_render() {
        app_counters("metrics-test").count(Outcome::Deny);
        app_counters("metrics-test").count(Outcome::Deny);
        observe_latency(Duration::from_micros(300));
        let text = render();
        assert!(text.contains("portcullis_requests_total{app=\"metrics-test\",decision=\"deny\"} 2"), "{text}");
        assert!(text.contains("portcullis_request_duration_seconds_bucket{le=\"+Inf\"}"));
    }

    #[test]
    fn device_certificate_gauges_follow_the_clock() {
        use crate::devices::registry::{CertStatus, DeviceCert, Registry};
        let cert = |serial: &str, status, expires_at| DeviceCert {
            serial: serial.into(),
            fingerprint: serial.into(),
            user: "ann".into(),
            device: "pc".into(),
            issued_at: 0,
            not_after: 10_000_000,
            status,
            expires_at,
            set_expiring_at: None,
        };
        let day = 86_400;
        let certs = [
            cert("a", CertStatus::Active, None),
            cert("b", CertStatus::Expiring, Some(20 * day)),
            cert("c", CertStatus::Expiring, Some(10 * day)),
            cert("d", CertStatus::Revoked, Some(1)),
        ];
        let r = Registry::from_certs(&certs, 0);
        let mut at_0 = String::new();
        render_device_certs(&mut at_0, &r, 0);
        assert!(at_0.contains("portcullis_device_certificates{status=\"expiring\"} 2"), "{at_0}");
        assert!(at_0.contains("portcullis_device_certificates_expiring_within_14d 1\n"), "{at_0}");
        let mut later = String::new();
        render_device_certs(&mut later, &r, 10 * day);
        assert!(later.contains("{status=\"expired\"} 1") && later.contains("{status=\"revoked\"} 1"), "{later}");
        assert!(later.contains("portcullis_device_certificates_expiring_within_14d 1\n"), "{later}");
    }
}
