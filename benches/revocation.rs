//! Revocation latency across instances: three portcullis processes share one
//! Redis (single server, Sentinel-managed primary with a replica, and a
//! three-primary Redis Cluster). For each of four acts done through the
//! first instance's admin API, it measures the time until *both* other
//! instances act on it, seen from outside (HTTPS requests polling each
//! instance back to back on kept-alive connections):
//!
//! - sign-out everywhere (`POST /sign-out`): the user's session answers 401;
//! - certificate revocation (`POST /cert/revoke`): the instance's registry
//!   snapshot (what its mTLS check reads) shows the certificate revoked;
//! - entrance-pass revocation (`POST /pass/revoke`): the pass no longer counts;
//! - unlock (`POST /unlock`): the instance no longer reads the user as locked
//!   (`GET /locked` on its admin API: the store read every login makes; the
//!   lock is not cached, so this is as soon as a login would let them in).
//!
//! The clock starts just before the act is sent. Prints p50 / p99 / max per
//! act and topology, and writes them with the command and the machine to
//! `benches/results/revocation.md`.
//!
//! `cargo bench --bench revocation` (all three topologies, 200 repetitions);
//! `-- --reps 50 --only single` for a quicker look. Under `cargo test
//! --all-targets` it is a smoke run: single Redis, 3 repetitions, no file.

#[path = "../tests/common/mod.rs"]
mod common;

use common::api::client_with_jar;
use common::redis_server::{primary_replicas_sentinel, RedisCluster, RedisServer};
use common::{Env, HASH, PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const APPS: &str = r#"
[networks]
internal = ["127.0.0.2/32"]

[entrance_pass]
issue_when = "internal_ip"

[lockout]
max_failures = 1
per_address_max = 100000

[device_certificates]
contracted = 5000
validity = "30d"

[policy_group.quick]
allow = "always"
otp_skip = "always"

[[app]]
name = "wiki"
hosts = ["wiki.localhost"]
upstream = "{upstream}"
policy_groups = ["quick"]
"#;

/// Users: `s` is signed out, `w` watches certificates, `p` holds passes, `l` is locked.
const USERS: [&str; 4] = ["s", "w", "p", "l"];

struct Instance {
    env: Env,
    _proc: common::Proc,
    token: String,
}

fn main() {
    portcullis::tls::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    // `cargo test --all-targets` runs this without `--bench`: then a smoke run
    // (single Redis, 3 repetitions) that writes no results.
    let smoke = !args.iter().any(|a| a == "--bench");
    let reps: usize = arg("--reps").map_or(if smoke { 3 } else { 200 }, |r| r.parse().expect("--reps takes a number"));
    let only = arg("--only").or_else(|| smoke.then(|| "single".to_string()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut table = Vec::new();
    for topology in ["single", "sentinel", "cluster"] {
        if only.as_deref().is_some_and(|o| o != topology) {
            continue;
        }
        eprintln!("== {topology}: starting Redis and three instances");
        // The Redis processes live until this topology is measured.
        let (url, keep): (String, Box<dyn std::any::Any>) = match topology {
            "single" => {
                let r = RedisServer::start();
                (r.url(), Box::new(r))
            }
            "sentinel" => {
                let (primary, replicas, sentinel) = primary_replicas_sentinel(1);
                (sentinel.url("mymaster"), Box::new((primary, replicas, sentinel)))
            }
            _ => {
                let c = RedisCluster::start();
                (c.url(), Box::new(c))
            }
        };
        let instances = start_instances(&url);
        for (act, samples) in runtime.block_on(measure_all(&instances, reps)) {
            table.push((topology, act, summary(samples)));
        }
        drop(instances);
        drop(keep);
    }
    let report = report(&table, reps, &args[1..]);
    println!("{report}");
    if smoke {
        return;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/results/revocation.md");
    std::fs::write(path, &report).unwrap();
    eprintln!("wrote {path}");
}

fn start_instances(url: &str) -> Vec<Instance> {
    let mut out: Vec<Instance> = Vec::new();
    for _ in 0..3 {
        let env = Env::new(&format!("store = \"{url}\""), APPS);
        let users = env.dir.path().join("users.toml");
        let mut text = String::new();
        for u in USERS {
            text += &format!("[[user]]\nusername = \"{u}\"\npassword = \"{HASH}\"\npolicy_group = \"quick\"\n");
        }
        std::fs::write(users, text).unwrap();
        if let Some(first) = out.first() {
            // Instances sharing a store share `secrets.key`; one server certificate for the one test CA.
            let state = env.dir.path().join("state");
            std::fs::create_dir_all(&state).unwrap();
            std::fs::copy(first.env.dir.path().join("state/secrets.key"), state.join("secrets.key")).unwrap();
            for f in ["server.crt", "server.key", "dev-ca.crt"] {
                std::fs::copy(first.env.dir.path().join("certs").join(f), env.dir.path().join("certs").join(f))
                    .unwrap();
            }
        }
        let proc = env.start();
        let token = env.token();
        out.push(Instance { env, _proc: proc, token });
    }
    out
}

/// A client as a browser sends it (Fetch Metadata, so a pass is issued), from `from`.
fn browser(env: &Env, from: &str) -> Client {
    client_with_jar(env, from, Arc::default())
}

async fn post(c: &Client, env: &Env, path: &str, body: Value) -> (StatusCode, Value) {
    let r = c
        .post(env.url("wiki.localhost", path))
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .header("sec-fetch-dest", "empty")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn login(c: &Client, env: &Env, user: &str, password: &str) -> Value {
    post(c, env, "/.portcullis/api/login", json!({"username": user, "password": password})).await.1
}

async fn whoami(c: &Client, env: &Env) -> Option<Value> {
    let r = c
        .get(env.url("wiki.localhost", "/.portcullis/api/whoami"))
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .header("sec-fetch-dest", "empty")
        .send()
        .await
        .ok()?;
    match r.status() {
        StatusCode::OK => r.json().await.ok(),
        _ => None,
    }
}

async fn admin(i: &Instance, path: &str, body: Value) -> Value {
    let r = Client::new()
        .post(format!("http://{}{path}", i.env.admin))
        .bearer_auth(&i.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// Polls `done` on one instance until it holds; when (after `t0`) the
/// request that first showed it was sent. The instance acted on the change
/// between the previous request and that one; the answer's own work (a
/// password hash for a login) is not the change's latency.
async fn until<F, Fut>(what: &str, t0: Instant, mut done: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        let sent = t0.elapsed();
        if done().await {
            return sent;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{what}: not within 10 s");
    }
}

/// Whether `user` is on the instance's list of locked users (a store read).
async fn is_locked(i: &Instance, user: &str) -> bool {
    let r = Client::new().get(format!("http://{}/locked", i.env.admin)).bearer_auth(&i.token).send().await;
    let v: Value = match r {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => Value::Null,
    };
    v["locked"].as_array().is_some_and(|l| l.iter().any(|e| e["user"] == user))
}

async fn cert_status(c: &Client, e: &Env, serial: &str) -> Option<String> {
    let v = whoami(c, e).await?;
    let certs = v["device_certificates"].as_array()?.clone();
    let cert = certs.iter().find(|c| c["serial"] == serial)?;
    cert["status"].as_str().map(String::from)
}

async fn has_pass(c: &Client, e: &Env) -> Option<bool> {
    whoami(c, e).await.map(|v| v["entrance_pass"] == true)
}

async fn measure_all(n: &[Instance], reps: usize) -> Vec<(&'static str, Vec<Duration>)> {
    let (a, others) = (&n[0], [&n[1].env, &n[2].env]);
    let mut out = Vec::new();

    // Sign-out everywhere.
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        let c = &browser(&a.env, "127.0.0.3");
        assert_eq!(login(c, &a.env, "s", PASSWORD).await["next"], "done");
        for e in others {
            until("session valid elsewhere", Instant::now(), || async { whoami(c, e).await.is_some() }).await;
        }
        let t0 = Instant::now();
        let sent = admin(a, "/sign-out", json!({"user": "s"}));
        let polls = others.map(|e| until("signed out", t0, move || async move { whoami(c, e).await.is_none() }));
        let (_, [x, y]) = tokio::join!(sent, join2(polls));
        samples.push(x.max(y));
    }
    out.push(("sign-out everywhere", samples));

    // Certificate revocation, seen in each instance's registry snapshot.
    let w = &browser(&a.env, "127.0.0.3");
    assert_eq!(login(w, &a.env, "w", PASSWORD).await["next"], "done");
    let mut samples = Vec::with_capacity(reps);
    for i in 0..reps {
        let issued = admin(a, "/cert/issue", json!({"user": "w", "device": format!("bench {i}")})).await;
        let serial = &issued["serial"].as_str().unwrap().to_string();
        for e in others {
            until("certificate seen", Instant::now(), || async {
                cert_status(w, e, serial).await.as_deref() == Some("active")
            })
            .await;
        }
        let t0 = Instant::now();
        let sent = admin(a, "/cert/revoke", json!({"serial": serial}));
        let polls = others.map(|e| {
            until("certificate revoked", t0, move || async move {
                cert_status(w, e, serial).await.as_deref() == Some("revoked")
            })
        });
        let (_, [x, y]) = tokio::join!(sent, join2(polls));
        samples.push(x.max(y));
    }
    out.push(("certificate revocation", samples));

    // Entrance-pass revocation.
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        let p = &browser(&a.env, "127.0.0.2");
        assert_eq!(login(p, &a.env, "p", PASSWORD).await["next"], "done");
        for e in others {
            until("pass counts elsewhere", Instant::now(), || async { has_pass(p, e).await == Some(true) }).await;
        }
        let passes = admin(a, "/pass/list", json!({"user": "p"})).await;
        let list = passes["passes"].as_array().cloned().unwrap_or_default();
        let active = list.iter().find(|p| p["status"] == "active").expect("a pass was issued");
        let id = active["id"].as_str().unwrap().to_string();
        let t0 = Instant::now();
        let sent = admin(a, "/pass/revoke", json!({"id": id}));
        let polls =
            others.map(|e| until("pass revoked", t0, move || async move { has_pass(p, e).await == Some(false) }));
        let (_, [x, y]) = tokio::join!(sent, join2(polls));
        samples.push(x.max(y));
    }
    out.push(("entrance-pass revocation", samples));

    // Unlock: the lock lives in the user's record, which every login reads
    // from the store; an instance's `GET /locked` reads the same.
    let mut samples = Vec::with_capacity(reps);
    let l = &browser(&a.env, "127.0.0.3");
    let others_i = [&n[1], &n[2]];
    for _ in 0..reps {
        login(l, &a.env, "l", "wrong").await;
        for i in others_i {
            until("locked elsewhere", Instant::now(), || async { is_locked(i, "l").await }).await;
        }
        let t0 = Instant::now();
        let sent = admin(a, "/unlock", json!({"user": "l"}));
        let polls = others_i.map(|i| until("unlocked", t0, move || async move { !is_locked(i, "l").await }));
        let (_, [x, y]) = tokio::join!(sent, join2(polls));
        samples.push(x.max(y));
    }
    out.push(("unlock", samples));
    out
}

async fn join2<F: std::future::Future<Output = Duration>>(polls: [F; 2]) -> [Duration; 2] {
    let [x, y] = polls;
    let (x, y) = tokio::join!(x, y);
    [x, y]
}

struct Summary {
    n: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn summary(mut samples: Vec<Duration>) -> Summary {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    Summary { n: samples.len(), p50: at(0.50), p99: at(0.99), max: *samples.last().unwrap() }
}

fn report(rows: &[(&str, &str, Summary)], reps: usize, args: &[String]) -> String {
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    let machine = machine();
    // `cargo bench` passes `--bench` to a harness-less bench.
    let given: Vec<&str> = args.iter().map(String::as_str).filter(|a| *a != "--bench").collect();
    let mut out = format!(
        "# Revocation latency across three instances\n\n\
         Command: `cargo bench --bench revocation{}{}` ({reps} repetitions per act)\n\n\
         Machine: {machine}\n\n\
         Time from sending the act to instance 1's admin API until instances 2 and 3 both act on it:\n\
         each is polled back to back over HTTPS, and an instance counts from when the first request\n\
         that shows the change was sent. Goal: p99 ≤ 100 ms.\n\n\
         | Redis | act | n | p50 ms | p99 ms | max ms |\n|---|---|---:|---:|---:|---:|\n",
        if given.is_empty() { "" } else { " -- " },
        given.join(" "),
    );
    for (topology, act, s) in rows {
        out += &format!("| {topology} | {act} | {} | {} | {} | {} |\n", s.n, ms(s.p50), ms(s.p99), ms(s.max));
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let redis = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(2)
                .unwrap_or("")
                .trim_start_matches("v=")
                .to_string()
        })
        .unwrap_or_default();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores; redis-server {redis}; release build; {date}")
}
