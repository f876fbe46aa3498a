//! Shared helpers for the integration tests: free loopback ports, development
//! certificates, the demo upstream (which echoes what it received), and a real
//! portcullis process, all stopped when dropped. No fixed ports, no sleeps
//! where a readiness check will do.

#![allow(dead_code)]

pub mod api;
pub mod certs;
pub mod cut;
pub mod raw;
pub mod redis_server;
pub mod smtp;

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A valid argon2id PHC string (of "portcullis-demo").
pub const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ew2XREgJJ/KSvmyjUGd9lg$0L4bmN+TdB6ufRDxKH+vUdnmjA0dGQP95mMedCgwR78";

/// A port for a test server to listen on, below Linux's ephemeral range
/// (32768–60999): a port the kernel hands out (`bind(:0)`) can be taken again,
/// between this call and the server's own bind, as the local port of any
/// outgoing connection (a proxy's Redis connections, a browser), and the
/// server then fails to start. Checked free by binding it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    // Spread test binaries over the range; walk from there.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = 10_000 + (std::process::id() * 7919 % 20_000);
    for _ in 0..20_000 {
        let port = (10_000 + (start - 10_000 + NEXT.fetch_add(1, Ordering::Relaxed)) % 22_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_for_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits until a started server (`what`) listens on `addr`. One that exits
/// first, or does not listen within `timeout`, fails the test with what it
/// wrote to `log`.
pub fn listening(what: &str, addr: SocketAddr, child: Child, log: &Path, timeout: Duration) -> Proc {
    let mut proc = Proc(child);
    let deadline = Instant::now() + timeout;
    let said = || std::fs::read_to_string(log).unwrap_or_default();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("{what} exited ({status}) before listening on {addr}; it said:\n{}", said());
        }
        assert!(Instant::now() < deadline, "{what} does not listen on {addr} after {timeout:?}; it said:\n{}", said());
        std::thread::sleep(Duration::from_millis(25));
    }
    proc
}

/// Waits until a TLS handshake with `addr` completes (a listening socket is
/// not yet a serving proxy), trusting the test CA.
pub fn wait_for_tls(addr: SocketAddr, ca: &Path) {
    let mut roots = rustls::RootCertStore::empty();
    for c in portcullis::tls::read_cert_chain(ca).unwrap() {
        roots.add(c).unwrap();
    }
    let config =
        std::sync::Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok().and_then(|mut tcp| {
            tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
            let mut tls = rustls::ClientConnection::new(config.clone(), name).ok()?;
            while tls.is_handshaking() {
                tls.complete_io(&mut tcp).ok()?;
            }
            Some(())
        });
        if done.is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "no TLS handshake with {addr}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Makes `command`'s process die with the thread that spawns it
/// (`PR_SET_PDEATHSIG`), so nothing outlives a test binary.
pub fn tied(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

pub fn demo_upstream() -> (Proc, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = tied(Command::new(env!("CARGO_BIN_EXE_portcullis-demo-upstream")).arg(addr.to_string()))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(addr);
    (Proc(child), addr)
}

/// Everything one test needs: a temp dir with certificates, users and config.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub https: SocketAddr,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    pub upstream: SocketAddr,
    pub ca: PathBuf,
    pub config: PathBuf,
    _upstream: Proc,
}

/// The `[[app]]` and `[networks]` part of a config; `{upstream}` is replaced.
pub const APPS: &str = r#"
[networks]
internal = ["127.0.0.2/32"]
lab = ["127.0.0.5/32"]

[policy_group.staff]
allow = "always"
otp_skip = "internal_ip"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]
bypass = "internal_ip"

[[app]]
name = "open"
hosts = ["*.open.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]
bypass = "always"
"#;

/// Apps behind a login: the `staff` group always needs a second factor and may
/// enroll one from the internal address 127.0.0.2.
pub const LOGIN_APPS: &str = r#"
[networks]
internal = ["127.0.0.2/32"]

[policy_group.staff]
allow = "always"
otp_skip = "never"
enroll_when = "internal_ip"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["staff"]
"#;

/// The password of every test user.
pub const PASSWORD: &str = "portcullis-demo";

impl Env {
    pub fn new(server_extra: &str, apps: &str) -> Env {
        portcullis::tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let certs = portcullis::tls::make_dev_certs(
            &dir.path().join("certs"),
            &[
                "localhost".into(),
                "*.localhost".into(),
                "wiki.localhost".into(),
                "a.open.localhost".into(),
                "unknown.localhost".into(),
                "127.0.0.1".into(),
            ],
        )
        .unwrap();
        let (upstream_proc, upstream) = demo_upstream();
        let port = |_| -> SocketAddr { format!("127.0.0.1:{}", free_port()).parse().unwrap() };
        let (https, http, admin) = (port(0), port(1), port(2));
        let users = dir.path().join("users.toml");
        std::fs::write(
            &users,
            format!("[[user]]\nusername = \"alice\"\npassword = \"{HASH}\"\npolicy_group = \"staff\"\n"),
        )
        .unwrap();
        let env = Env {
            https,
            http,
            admin,
            upstream,
            ca: certs.ca_cert.clone(),
            config: dir.path().join("portcullis.toml"),
            _upstream: upstream_proc,
            dir,
        };
        let text = env.config_text(server_extra, apps, &certs);
        std::fs::write(&env.config, text).unwrap();
        env
    }

    fn config_text(&self, server_extra: &str, apps: &str, certs: &portcullis::tls::DevCerts) -> String {
        let d = self.dir.path().display();
        format!(
            "[server]\nhttps = \"{}\"\nhttp = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\nstate_dir = \"{d}/state\"\ngrace_period = \"5s\"\nthreads = 2\n{server_extra}\n\
             [admin]\nlisten = \"{}\"\n\n[users]\nfile = \"{d}/users.toml\"\n{}",
            self.https, self.http, certs.server_cert.display(), certs.server_key.display(), self.admin,
            apps.replace("{upstream}", &self.upstream.to_string()),
        )
    }

    /// Rewrites the config with other apps (same listeners and certificates).
    pub fn rewrite(&self, server_extra: &str, apps: &str) {
        let certs = portcullis::tls::DevCerts {
            ca_cert: self.ca.clone(),
            server_cert: self.dir.path().join("certs/server.crt"),
            server_key: self.dir.path().join("certs/server.key"),
        };
        std::fs::write(&self.config, self.config_text(server_extra, apps, &certs)).unwrap();
    }

    pub fn start(&self) -> Proc {
        let log_path = self.dir.path().join("portcullis.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let proc = listening("portcullis", self.admin, child, &log_path, Duration::from_secs(60));
        wait_for_tls(self.https, &self.ca);
        proc
    }

    /// Starts portcullis for the whole test binary (tests share it): the
    /// process is spawned from a thread that lives as long as the binary and
    /// is killed when the binary exits (`PR_SET_PDEATHSIG`), so no test has
    /// to stop it.
    pub fn start_for_binary(&self) {
        let log = std::fs::File::create(self.dir.path().join("portcullis.log")).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        command.args(["run", "--config"]).arg(&self.config).env("RUST_LOG", "info");
        tied(command.stdout(log.try_clone().unwrap()).stderr(log));
        on_binary_thread(move || command.spawn().map(|_| ())).unwrap();
        wait_for_port(self.admin);
        wait_for_tls(self.https, &self.ca);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("portcullis.log")).unwrap_or_default()
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state/admin.token")).unwrap().trim().to_string()
    }

    /// An HTTPS client bound to `from` (e.g. 127.0.0.2), trusting the dev CA,
    /// resolving the test host names to the proxy, following no redirects.
    pub fn client(&self, from: &str) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.ca).unwrap()).unwrap();
        let local: IpAddr = from.parse().unwrap();
        let mut b = reqwest::Client::builder()
            .add_root_certificate(ca)
            .local_address(local)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20));
        for host in ["wiki.localhost", "a.open.localhost", "localhost", "unknown.localhost"] {
            b = b.resolve(host, self.https);
        }
        b.build().unwrap()
    }

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.https.port())
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> (u16, String) {
        let mut req = reqwest::Client::new().request(method, format!("http://{}{path}", self.admin));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// Runs the portcullis binary with arguments; returns (exit code, stdout, stderr).
pub fn portcullis(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `make` on a thread that lives as long as the test binary and returns
/// what it made: the processes it starts (the demo upstream, an SMTP server)
/// die with the thread that started them (`PR_SET_PDEATHSIG`), and a test's
/// own thread ends with the test.
pub fn on_binary_thread<T: Send + 'static>(make: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(make());
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
