//! Redis round trips and latency per login step, against a real
//! `redis-server` on a loopback port: password, TOTP, recovery code, and the
//! request fast path (session check + decision), which must make none.
//! Prints a table; `cargo bench --bench login_steps` (quick: `-- --quick`).

use portcullis::auth::Auth;
use portcullis::challenge::login::Step;
use portcullis::clock::SystemClock;
use portcullis::policy::decide::decide;
use portcullis::policy::expr::Facts;
use portcullis::store::secrets::Secrets;
use portcullis::store::SharedStore;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Redis(Child, u16);
impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> Redis {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed (scripts/deps.sh test)");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10), "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Redis(child, port)
}

/// Commands Redis has processed, from INFO commandstats, leaving out the
/// change feed's keep-alive PINGs and these INFO calls themselves.
fn commands(port: u16) -> u64 {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap().get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut c).unwrap();
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter(|l| !l.starts_with("ping:") && !l.starts_with("info:") && !l.starts_with("hello:"))
        .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum()
}

fn config(dir: &std::path::Path, redis_port: u16) -> portcullis::config::Config {
    portcullis::tls::install_crypto_provider();
    let certs = portcullis::tls::make_dev_certs(&dir.join("certs"), &["localhost".into()]).unwrap();
    let users = std::fs::read_to_string("config/users.toml").unwrap();
    std::fs::write(dir.join("users.toml"), users).unwrap();
    let text = format!(
        "[server]\nhttps = \"127.0.0.1:1\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\nstore = \"redis://127.0.0.1:{redis_port}\"\n\
         [networks]\ninternal = [\"10.0.0.0/8\"]\n[users]\nfile = \"{}\"\n\
         [lockout]\nmax_failures = 100\nper_address_max = 100000\n\
         [policy_group.staff]\notp_skip = \"never\"\nenroll_when = \"always\"\n\
         [policy_group.contractors]\n\
         [[app]]\nname = \"wiki\"\nhosts = [\"wiki.localhost\"]\nupstream = \"127.0.0.1:3000\"\npolicy_groups = [\"staff\"]\n",
        certs.server_cert.display(),
        certs.server_key.display(),
        dir.join("users.toml").display()
    );
    std::fs::write(dir.join("c.toml"), text).unwrap();
    portcullis::config::load(&dir.join("c.toml")).unwrap()
}

struct Timing {
    name: &'static str,
    samples: Vec<Duration>,
    commands: u64,
}

impl Timing {
    fn row(&mut self) -> String {
        self.samples.sort();
        let n = self.samples.len();
        let p = |q: f64| self.samples[((n as f64 * q) as usize).min(n - 1)];
        format!(
            "| {} | {n} | {:.1} | {:.0} µs | {:.0} µs |",
            self.name,
            self.commands as f64 / n as f64,
            p(0.50).as_secs_f64() * 1e6,
            p(0.99).as_secs_f64() * 1e6
        )
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` runs this once, quickly, as a smoke test.
    let full = std::env::args().any(|a| a == "--bench") && !std::env::args().any(|a| a == "--quick");
    let rounds = if full { 200 } else { 5 };
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), server.1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let secrets = Secrets::load_or_create(dir.path()).unwrap();
    let store: SharedStore = Arc::new(portcullis::store::redis::from_config(&cfg.server.store, &secrets).unwrap());
    let auth = Auth::with(secrets, None, store, Arc::new(SystemClock)).unwrap();
    rt.block_on(auth.start()).unwrap();
    let ip = "10.1.2.3".parse().unwrap();
    let facts = Facts::default();

    // Enroll alice once (not measured), keeping the key for codes.
    let key = rt.block_on(async {
        assert_eq!(
            auth.login.password(&cfg, 0, &facts, ip, "setup", "alice", "portcullis-demo", None, "/").await,
            Step::NeedEnroll
        );
        let e = auth.login.enroll_start(&cfg, "setup").await.unwrap();
        let secret = portcullis::challenge::totp::TotpSecret::from_base32(&e.key_string).unwrap();
        let totp = portcullis::challenge::totp::Totp::new(30);
        let now = portcullis::clock::Clock::now(&SystemClock);
        let (_, codes) = auth.login.enroll_confirm(&cfg, ip, "setup", &totp.code(&secret, now)).await.unwrap();
        (secret, codes)
    });

    let mut password = Timing { name: "password (argon2id + lock check + attempt)", samples: vec![], commands: 0 };
    let mut wrong = Timing { name: "wrong TOTP code (failure counted)", samples: vec![], commands: 0 };
    let mut recovery = Timing { name: "recovery code (single-use)", samples: vec![], commands: 0 };
    rt.block_on(async {
        let mut codes = key.1.clone().into_iter().cycle();
        for i in 0..rounds {
            let flow = format!("flow{i}");
            let (c0, t0) = (commands(server.1), Instant::now());
            let step = auth.login.password(&cfg, 0, &facts, ip, &flow, "alice", "portcullis-demo", None, "/").await;
            password.samples.push(t0.elapsed());
            password.commands += commands(server.1) - c0;
            assert_eq!(step, Step::NeedTotp);
            let (c0, t0) = (commands(server.1), Instant::now());
            let step = auth.login.totp(&cfg, ip, &flow, "000000").await;
            wrong.samples.push(t0.elapsed());
            wrong.commands += commands(server.1) - c0;
            assert_eq!(step, Step::WrongCode);
            if i < 10 {
                let code = codes.next().unwrap();
                let (c0, t0) = (commands(server.1), Instant::now());
                let step = auth.login.recovery(&cfg, ip, &flow, &code).await;
                recovery.samples.push(t0.elapsed());
                recovery.commands += commands(server.1) - c0;
                assert!(matches!(step, Step::Done { .. }), "{step:?}");
            } else {
                auth.store().reset_failures("alice").await.unwrap();
            }
        }
    });

    // The fast path: a session cookie checked and the decision made, many times.
    let now = portcullis::clock::Clock::now(&SystemClock);
    let session = portcullis::identity::session::Session::new(
        "alice",
        "wiki",
        portcullis::identity::session::SessionLevel::BothFactors,
        now,
        3600,
    );
    let header = format!("{}={}", portcullis::identity::session::SESSION_COOKIE, session.to_cookie(&auth.keys.load()));
    let n = if full { 100_000 } else { 1_000 };
    let c0 = commands(server.1);
    let t0 = Instant::now();
    for _ in 0..n {
        let s = auth.session(&cfg, 0, std::iter::once(header.as_bytes())).expect("valid session");
        std::hint::black_box(decide(cfg.app(0), &cfg.groups, &facts, Some(&s.facts)));
    }
    let per = t0.elapsed() / n;
    let fast_commands = commands(server.1) - c0;

    let mut out = String::new();
    let _ =
        writeln!(out, "\nRedis round trips and latency per login step ({rounds} rounds, redis-server on loopback)\n");
    let _ = writeln!(out, "| step | samples | Redis commands per step | p50 | p99 |\n|---|---|---|---|---|");
    for t in [&mut password, &mut wrong, &mut recovery] {
        let _ = writeln!(out, "{}", t.row());
    }
    let _ = writeln!(
        out,
        "| request fast path (session cookie + decision) | {n} | {:.1} | {} ns (mean) | - |",
        fast_commands as f64 / n as f64,
        per.as_nanos()
    );
    println!("{out}");
    assert_eq!(fast_commands, 0, "the request fast path must make no Redis round trip");
}
