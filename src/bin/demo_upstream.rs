//! The demo app behind the quick start and the tests: answers every request
//! with a JSON echo of what it received (method, path, headers, peer), so you
//! can see exactly what portcullis forwards. `/slow?ms=N` waits first;
//! a WebSocket upgrade gets an echo socket.
//!
//! Usage: portcullis-demo-upstream [LISTEN_ADDR]   (default 127.0.0.1:3000)

use base64::Engine;
use sha1::{Digest, Sha1};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 64 * 1024;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("demo upstream listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = serve(stream, peer.to_string()).await;
        });
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

async fn serve(mut s: TcpStream, peer: String) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let Some((req, used)) = read_head(&mut s, &mut buf).await? else {
            return Ok(());
        };
        buf.drain(..used);
        let body = read_body(&mut s, &mut buf, &req).await?;
        if req.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            return websocket(s, &req, buf).await;
        }
        if let Some(ms) = req.path.strip_prefix("/slow?ms=").and_then(|m| m.parse::<u64>().ok()) {
            tokio::time::sleep(Duration::from_millis(ms.min(30_000))).await;
        }
        let echo = serde_json::json!({
            "method": req.method, "path": req.path, "peer": peer,
            "headers": req.headers, "body_bytes": body,
        });
        let text = serde_json::to_string_pretty(&echo).unwrap_or_default() + "\n";
        let head =
            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", text.len());
        s.write_all(format!("{head}{text}").as_bytes()).await?;
        if req.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close")) {
            return Ok(());
        }
    }
}

async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<(Request, usize)>> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut parsed = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(used)) = parsed.parse(buf) {
            let req = Request {
                method: parsed.method.unwrap_or("").to_string(),
                path: parsed.path.unwrap_or("").to_string(),
                headers: parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect(),
            };
            return Ok(Some((req, used)));
        }
        if buf.len() > MAX_HEAD || s.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// Reads and discards the body; returns its length.
async fn read_body(s: &mut TcpStream, buf: &mut Vec<u8>, req: &Request) -> std::io::Result<usize> {
    if let Some(n) = req.header("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
        while buf.len() < n {
            if s.read_buf(buf).await? == 0 {
                break;
            }
        }
        let n = n.min(buf.len());
        buf.drain(..n);
        return Ok(n);
    }
    if !req.header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let Some(line_end) = find(buf, b"\r\n") else {
            if s.read_buf(buf).await? == 0 {
                return Ok(total);
            }
            continue;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&buf[..line_end]).split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or(0);
        while buf.len() < line_end + 2 + size + 2 {
            if s.read_buf(buf).await? == 0 {
                return Ok(total);
            }
        }
        buf.drain(..line_end + 2 + size + 2);
        total += size;
        if size == 0 {
            return Ok(total);
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// RFC 6455 handshake, then echoes every text/binary frame back (unmasked).
async fn websocket(mut s: TcpStream, req: &Request, mut buf: Vec<u8>) -> std::io::Result<()> {
    let key = req.header("sec-websocket-key").unwrap_or("");
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(h.finalize());
    s.write_all(format!("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n").as_bytes()).await?;
    loop {
        while buf.len() < 2 {
            if s.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let (opcode, masked, len7) = (buf[0] & 0x0f, buf[1] & 0x80 != 0, (buf[1] & 0x7f) as usize);
        let (len, mut at) = match len7 {
            126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
            127 => return Ok(()),
            126 => (usize::MAX, 0),
            n => (n, 2),
        };
        let need = at + if masked { 4 } else { 0 } + len;
        if len == usize::MAX || buf.len() < need {
            if s.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
            continue;
        }
        let mask: [u8; 4] = if masked { [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]] } else { [0; 4] };
        at += if masked { 4 } else { 0 };
        let payload: Vec<u8> = buf[at..at + len].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        buf.drain(..need);
        if opcode == 8 {
            return s.write_all(&[0x88, 0]).await;
        }
        let mut frame = vec![0x80 | opcode];
        if len < 126 {
            frame.push(len as u8);
        } else {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        frame.extend_from_slice(&payload);
        s.write_all(&frame).await?;
    }
}
