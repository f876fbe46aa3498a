//! Wiring: the Pingora server with its services (the HTTPS proxy, the optional
//! plain-HTTP redirect, the admin API, the SIGHUP reloader) and the graceful
//! shutdown that drains in-flight requests, in one place.

use super::{Listener, Portcullis};
use crate::admin::api::{ensure_token, AdminApi, AdminRequest, BodyAllowance};
use crate::auth::Auth;
use crate::config::hosts::strip_port;
use crate::config::StoreConfig;
use crate::live::Live;
use crate::store::secrets::Secrets;
use crate::store::{embedded::EmbeddedStore, SharedStore};
use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::http::ServerSession;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Loads the config and serves until SIGTERM/SIGINT.
pub fn run(config_path: &std::path::Path) -> Result<(), String> {
    crate::tls::install_crypto_provider();
    let config = crate::config::load(config_path).map_err(|e| e.to_string())?;
    crate::logging::audit_file::set(config.log.audit_file.as_ref())?;
    crate::logging::apply(&config.log);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    // Before anything is written into it: the token file lives there by default.
    for w in crate::state_dir::prepare(&config.server.state_dir)? {
        tracing::warn!("{w}");
    }
    ports_free(&config)?;
    let token = ensure_token(&config.admin.token_file)?;
    crate::devices::ca::open_at_start(&config)?;
    // Read once: a changed device CA takes a restart (the listener keeps its verifier).
    let device_ca =
        config.device_certificates.as_ref().map(|d| crate::devices::ca::paths(d, &config.server.state_dir).0);
    let cert_login = config.device_certificates.as_ref().and_then(|d| d.login.as_ref()).map(|l| l.listen);
    let auth = open_auth(&config)?;
    tracing::info!("{}", config.summary());
    let (https, http, admin, grace, threads) = (
        config.server.https,
        config.server.http,
        config.admin.listen,
        config.server.grace_period,
        config.server.threads,
    );
    let live = Live::new(config);

    let conf = ServerConf {
        threads,
        work_stealing: live.current().server.work_stealing,
        grace_period_seconds: Some(grace.as_secs().max(1)),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut proxy = pingora::proxy::http_proxy_service_inline_h1(
        &server.configuration,
        Portcullis { live: live.clone(), auth: auth.clone(), listener: Listener::Main },
        "portcullis https",
    );
    proxy.add_tls_with_settings(&https.to_string(), None, tls_settings(&live, device_ca.as_deref())?);
    server.add_service(proxy);
    if let (Some(listen), Some(ca_cert)) = (cert_login, device_ca.as_deref()) {
        let mut login = pingora::proxy::http_proxy_service_inline_h1(
            &server.configuration,
            Portcullis { live: live.clone(), auth: auth.clone(), listener: Listener::CertLogin },
            "portcullis certificate login",
        );
        login.add_tls_with_settings(&listen.to_string(), None, tls_settings(&live, Some(ca_cert))?);
        server.add_service(login);
        tracing::info!("certificate login listening on https://{listen}");
    }

    if let Some(http) = http {
        let mut redirect =
            Service::new("portcullis http redirect".into(), RedirectToHttps { https_port: https.port() });
        redirect.add_tcp(&http.to_string());
        server.add_service(redirect);
    }
    let mut admin_service = Service::new(
        "portcullis admin".into(),
        AdminService { live: live.clone(), auth: auth.clone(), api: AdminApi::new(token) },
    );
    admin_service.add_tcp(&admin.to_string());
    server.add_service(admin_service);
    server.add_service(background_service("sighup reload", ReloadOnHup(live.clone())));
    server.add_service(background_service("revocation feed", FollowChanges(auth)));

    tracing::info!("portcullis listening on https://{https} (admin http://{admin})");
    crate::live::return_freed_memory();
    server.run(RunArgs { shutdown_signal: Box::new(DrainOnSignal { live, grace }) });
    Ok(())
}

/// The TLS settings of an HTTPS listener: the server certificate by SNI,
/// HTTP/2, and with a device CA a CertificateRequest whose answer is
/// verified against it (optional in the handshake: the request decides, so a
/// browser without a certificate gets a page saying what is missing rather
/// than a failed handshake).
fn tls_settings(live: &Live, device_ca: Option<&std::path::Path>) -> Result<TlsSettings, String> {
    let mut tls = match device_ca {
        // Without `[device_certificates]` the listener is as before: no
        // callback, no CertificateRequest.
        None => TlsSettings::intermediate("", "").map_err(|e| e.to_string())?,
        Some(ca_cert) => {
            let mut tls =
                TlsSettings::with_callbacks(Box::new(crate::tls::DeviceCertCallback)).map_err(|e| e.to_string())?;
            tls.set_client_cert_verifier(crate::tls::device_client_verifier(ca_cert)?);
            tls
        }
    };
    tls.set_cert_resolver(live.cert.clone());
    tls.enable_h2();
    Ok(tls)
}

/// Every listening address, tried before Pingora starts: Pingora would wait
/// for a taken port forever ("will try again"), and a new user should read
/// which address and which key instead.
fn ports_free(config: &crate::config::Config) -> Result<(), String> {
    let mut listen = vec![(config.server.https, "server.https"), (config.admin.listen, "admin.listen")];
    if let Some(http) = config.server.http {
        listen.push((http, "server.http"));
    }
    if let Some(l) = config.device_certificates.as_ref().and_then(|d| d.login.as_ref()) {
        listen.push((l.listen, "device_certificates.login_listen"));
    }
    for (addr, key) in listen {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            let why = match e.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "is already in use: stop what listens there, or choose another port".to_string()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "may not be opened by this user (ports below 1024 need root or CAP_NET_BIND_SERVICE)".to_string()
                }
                std::io::ErrorKind::AddrNotAvailable => "is not an address of this machine".to_string(),
                _ => format!("cannot be opened: {e}"),
            };
            return Err(format!("{key} = \"{addr}\" {why}"));
        }
    }
    Ok(())
}

/// Opens the configured store and the sign-in keys, and reads the
/// revocations, before the first request is served.
fn open_auth(config: &crate::config::Config) -> Result<Arc<Auth>, String> {
    let state_dir = &config.server.state_dir;
    let secrets = Secrets::load_or_create(state_dir)?;
    let (store, keys_file): (SharedStore, _) = match &config.server.store {
        StoreConfig::Embedded => {
            (Arc::new(EmbeddedStore::open(state_dir).map_err(|e| e.to_string())?), Some(state_dir.join("cookie.keys")))
        }
        StoreConfig::Redis { .. } => {
            // Credentials, TLS trust and ACL are the config's to fix: say which, once, and stop.
            // An unreachable Redis is reported below, where the revocations are read.
            if let Err(crate::store::redis::AccessError::Refused(e)) =
                crate::store::redis::check_at_start(&config.server.store)
            {
                return Err(e);
            }
            (Arc::new(crate::store::redis::from_config(&config.server.store, &secrets)?), None)
        }
    };
    let auth = Arc::new(Auth::with(secrets, keys_file, store, Arc::new(crate::clock::SystemClock))?);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(auth.start()).map_err(|e| match &config.server.store {
        StoreConfig::Redis { url, .. } if e.contains("unavailable") => format!(
            "cannot reach Redis at {} (server.store): {}; start redis-server there, or correct server.store",
            redacted(url),
            e.rsplit(": ").next().unwrap_or(&e)
        ),
        _ => e,
    })?;
    Ok(auth)
}

/// A Redis URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://…@{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}

struct FollowChanges(Arc<Auth>);

#[async_trait]
impl BackgroundService for FollowChanges {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            _ = self.0.clone().follow_changes() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// SIGTERM or SIGINT: stop accepting, let requests in flight finish, and exit
/// as soon as none is left (Pingora alone would always wait the whole grace period).
struct DrainOnSignal {
    live: Arc<Live>,
    grace: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for DrainOnSignal {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining requests in flight (at most {:?})", self.grace),
            _ = int.recv() => tracing::info!("SIGINT: draining requests in flight (at most {:?})", self.grace),
        }
        let live = self.live.clone();
        std::thread::spawn(move || {
            // Let the listeners close first, then wait for the last request to end.
            std::thread::sleep(Duration::from_millis(200));
            while live.inflight.load(Ordering::Acquire) > 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
            tracing::info!("drained: exiting");
            std::process::exit(0);
        });
        ShutdownSignal::GracefulTerminate
    }
}

struct ReloadOnHup(Arc<Live>);

#[async_trait]
impl BackgroundService for ReloadOnHup {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot listen for SIGHUP: reload through the admin API instead");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the config");
                    let live = self.0.clone();
                    let _ = tokio::task::spawn_blocking(move || live.reload()).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn response(status: u16, content_type: &str, body: String, location: Option<String>) -> Response<Vec<u8>> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store");
    if let Some(l) = location {
        b = b.header("location", l);
    }
    b.body(body.into_bytes()).unwrap_or_default()
}

struct AdminService {
    live: Arc<Live>,
    auth: Arc<Auth>,
    api: AdminApi,
}

#[async_trait]
impl ServeHttp for AdminService {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let auth = req.headers.get(http::header::AUTHORIZATION).map(|v| v.as_bytes().to_vec());
        let (method, path) = (req.method.as_str().to_string(), req.uri.path().to_string());
        let body = match self.api.body_allowance(&method, &path, auth.as_deref()) {
            BodyAllowance::Unread => {
                // No token: answer (401, or /healthz) and close rather than read a byte of it.
                if !session.is_body_empty() {
                    session.set_keepalive(None);
                }
                Vec::new()
            }
            BodyAllowance::UpTo(limit) => match read_admin_body(session, limit).await {
                Ok(body) => body,
                Err((status, error)) => {
                    session.set_keepalive(None);
                    return response(status, "application/json", format!("{{\"error\":\"{error}\"}}\n"), None);
                }
            },
        };
        let request = AdminRequest { method: &method, path: &path, authorization: auth.as_deref(), body: &body };
        let from = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        let r = self.api.handle(&self.live, &self.auth, request, from).await;
        // Polling (health checks, Prometheus) is not an administrator's act.
        if !(matches!(path.as_str(), "/healthz" | "/metrics") && r.status < 400) {
            let from = session.client_addr().map(|a| a.to_string());
            // The bearer token acts as `token:<its file's name>` (`token:admin` by default).
            let actor = self
                .api
                .authorized(auth.as_deref())
                .then(|| format!("token:{}", crate::admin::api::token_name(&self.live.current())));
            crate::audit!("admin_call", method = %method, path = %path, status = r.status, from, actor, role = "token");
        }
        response(r.status, r.content_type, r.body, None)
    }
}

/// Reads an admin request body of at most `limit` bytes: a larger declared
/// `Content-Length` is refused before any byte is read, and a chunked body is
/// dropped as soon as it passes the limit. Errors are (status, error name).
async fn read_admin_body(session: &mut ServerSession, limit: usize) -> Result<Vec<u8>, (u16, &'static str)> {
    let declared =
        session.get_header(http::header::CONTENT_LENGTH).map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    match declared {
        Some(None) => return Err((400, "bad_content_length")),
        Some(Some(n)) if n > limit as u64 => return Err((413, "body_too_large")),
        _ => {}
    }
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > limit => return Err((413, "body_too_large")),
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body),
            Err(_) => return Err((400, "bad_body")),
        }
    }
}

/// The optional plain-HTTP listener: every request is sent to HTTPS.
struct RedirectToHttps {
    https_port: u16,
}

#[async_trait]
impl ServeHttp for RedirectToHttps {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let host = req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).and_then(strip_port);
        let valid =
            host.filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b)));
        let Some(host) = valid else {
            return response(400, "text/plain", "a Host header is required\n".into(), None);
        };
        let port = if self.https_port == 443 { String::new() } else { format!(":{}", self.https_port) };
        let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let location = format!("https://{host}{port}{path}");
        response(308, "text/plain", format!("see {location}\n"), Some(location))
    }
}
