//! Raw bytes on both sides of the proxy: a TLS client that sends exactly the
//! bytes a test gives it, and an upstream that logs exactly the bytes it
//! received. Framing and path tests assert on that log, not only on what the
//! client was told.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An HTTP/1.1 upstream on a free loopback port that records every byte of
/// every connection and answers each request it can frame with `200 seen`.
pub struct RawUpstream {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<u8>>>,
}

impl RawUpstream {
    pub fn start() -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Arc<Mutex<Vec<u8>>> = Arc::default();
        let l = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let l = l.clone();
                std::thread::spawn(move || serve(stream, &l));
            }
        });
        RawUpstream { addr, log }
    }

    /// Everything received so far, all connections, as lossy text.
    pub fn received(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// Waits briefly for `needle` to arrive (the proxy writes asynchronously).
    pub fn saw(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_millis(300);
        loop {
            if self.received().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(mut stream: TcpStream, log: &Mutex<Vec<u8>>) {
    log.lock().unwrap().extend_from_slice(b"\n=== new upstream connection ===\n");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Some(used) = complete_request(&buf) {
            buf.drain(..used);
            let body = b"seen\n";
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n", body.len());
            if stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body)).is_err() {
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                log.lock().unwrap().extend_from_slice(&chunk[..n]);
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// The length of the first complete request in `buf` (header and body, framed
/// by Content-Length or chunked), if it has arrived.
fn complete_request(buf: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf).ok()? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let value = |name: &str| req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    if value("transfer-encoding").is_some() {
        let mut at = head;
        loop {
            let (size_len, size) = match httparse::parse_chunk_size(&buf[at..]).ok()? {
                httparse::Status::Complete(x) => x,
                httparse::Status::Partial => return None,
            };
            at += size_len + size as usize + 2;
            if buf.len() < at {
                return None;
            }
            if size == 0 {
                return Some(at);
            }
        }
    }
    let length: usize = value("content-length").and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()).unwrap_or(0);
    (buf.len() >= head + length).then_some(head + length)
}

/// Opens a TLS connection to the proxy (SNI `host`, trusting `ca`), writes
/// `request` as it is, and returns everything read until the proxy closes the
/// connection or stays silent for `idle`.
pub fn exchange(proxy: SocketAddr, ca: &Path, host: &str, request: &[u8], idle: Duration) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for c in portcullis::tls::read_cert_chain(ca).unwrap() {
        roots.add(c).unwrap();
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(proxy).unwrap();
    tcp.set_read_timeout(Some(idle)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request).unwrap();
    tls.flush().unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of the first response in `answer`, or 0.
pub fn status(answer: &str) -> u16 {
    answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}
