//! The yardstick of the load harness (`benches/harness/run.sh`): the smallest
//! Pingora proxy that does what portcullis does on its fast path, minus the
//! access control. TLS (rustls, HTTP/1.1 + HTTP/2 by ALPN) in front of one
//! plain-HTTP upstream, with Pingora's upstream connection pool, built from the
//! same Pingora version as portcullis. Whatever portcullis costs beyond this
//! binary is the price of its decisions.
//!
//! A crate of its own (see Cargo.toml): upstream Pingora from crates.io, not
//! portcullis's patched copy; fat LTO and one codegen unit; mimalloc and the
//! rustls ring provider, as portcullis.
//!
//! Usage: bare-pingora --listen 127.0.0.1:8443 --upstream 127.0.0.1:3000
//!                     --cert server.crt --key server.key [--threads N] [--client-ca ca.crt]
//!
//! `--client-ca` makes the listener request (and verify, when presented) a
//! client certificate, so the harness can price a mutual-TLS handshake.

use async_trait::async_trait;
use clap::Parser;
use pingora::listeners::tls::TlsSettings;
use pingora::prelude::{http_proxy_service, HttpPeer, ProxyHttp, Server, Session};
use pingora::server::configuration::ServerConf;
use std::net::SocketAddr;
use std::sync::Arc;

/// The same allocator as portcullis (src/main.rs), so that the comparison
/// prices access control, not malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Minimal Pingora TLS pass-through proxy (load-harness baseline)")]
struct Args {
    /// HTTPS listen address.
    #[arg(long)]
    listen: SocketAddr,
    /// Plain-HTTP upstream address.
    #[arg(long)]
    upstream: SocketAddr,
    /// PEM certificate chain.
    #[arg(long)]
    cert: String,
    /// PEM private key.
    #[arg(long)]
    key: String,
    /// Worker threads (portcullis uses the number of cores by default).
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    threads: usize,
    /// Request a client certificate issued by this CA (optional for the client).
    #[arg(long)]
    client_ca: Option<String>,
}

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn client_verifier(ca: &str) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).map_err(|e| format!("cannot read `{ca}`: {e}"))?;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| format!("`{ca}` is not valid PEM: {e}"))?;
        roots.add(cert).map_err(|e| format!("`{ca}`: {e}"))?;
    }
    rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("`{ca}`: {e}"))
}

fn main() -> Result<(), String> {
    // The ring provider, as portcullis (src/tls.rs).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let conf = ServerConf { threads: args.threads, ..ServerConf::default() };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut proxy = http_proxy_service(&server.configuration, Bare { upstream: args.upstream });
    let mut tls = TlsSettings::intermediate(&args.cert, &args.key).map_err(|e| e.to_string())?;
    tls.enable_h2();
    if let Some(ca) = &args.client_ca {
        tls.set_client_cert_verifier(client_verifier(ca)?);
    }
    proxy.add_tls_with_settings(&args.listen.to_string(), None, tls);
    server.add_service(proxy);
    println!("bare pingora on https://{} -> http://{}", args.listen, args.upstream);
    server.run_forever()
}
