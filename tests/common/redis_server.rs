//! A real `redis-server` for tests: on a free loopback port, without
//! persistence, killed on drop; it can be stopped and started again on the
//! same port (outage tests). [`RedisServer::start_tls`] serves TLS only,
//! with certificates of its own (a CA, the server's, a client's).

use super::{free_port, listening, Proc};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where a server listens, as `listening` takes it.
fn loopback(port: u16) -> SocketAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

/// The file a server's output is appended to (a restart keeps what the last
/// run said).
fn log_file(dir: &Path) -> (PathBuf, std::fs::File) {
    let path = dir.join("redis.log");
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
    (path, file)
}

/// A `redis-server` on a loopback port, without persistence; killed on drop.
/// It can be stopped and started again on the same port.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    tls: Option<RedisTlsFiles>,
    proc: Option<Proc>,
}

/// The certificates of a TLS `redis-server`: a CA, the server's certificate
/// (for 127.0.0.1) and a client certificate, both signed by the CA.
pub struct RedisTlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    _dir: tempfile::TempDir,
}

impl RedisTlsFiles {
    pub fn new() -> RedisTlsFiles {
        let dir = tempfile::tempdir().unwrap();
        let dev = portcullis::tls::make_dev_certs(dir.path(), &["127.0.0.1".into(), "localhost".into()]).unwrap();
        let ca_key =
            rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.path().join("dev-ca.key")).unwrap()).unwrap();
        let ca_params =
            rcgen::CertificateParams::from_ca_cert_pem(&std::fs::read_to_string(&dev.ca_cert).unwrap()).unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, "portcullis instance");
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        let (client_cert, client_key) = (dir.path().join("client.crt"), dir.path().join("client.key"));
        std::fs::write(&client_cert, cert.pem()).unwrap();
        std::fs::write(&client_key, key.serialize_pem()).unwrap();
        RedisTlsFiles {
            ca: dev.ca_cert,
            server_cert: dev.server_cert,
            server_key: dev.server_key,
            client_cert,
            client_key,
            _dir: dir,
        }
    }
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_on(free_port(), &[])
    }

    pub fn start_on(port: u16, extra: &[&str]) -> RedisServer {
        let args = extra.iter().map(|s| s.to_string()).collect();
        let mut server = RedisServer { port, dir: tempfile::tempdir().unwrap(), args, tls: None, proc: None };
        server.restart();
        server
    }

    /// TLS only (`--port 0`), with certificates of its own; `auth_clients` is
    /// `--tls-auth-clients` (`yes`, `no` or `optional`).
    pub fn start_tls(auth_clients: &str, extra: &[&str]) -> RedisServer {
        portcullis::tls::install_crypto_provider();
        let tls = RedisTlsFiles::new();
        let path = |p: &PathBuf| p.to_str().unwrap().to_string();
        let mut args = vec![
            "--tls-cert-file".into(),
            path(&tls.server_cert),
            "--tls-key-file".into(),
            path(&tls.server_key),
            "--tls-ca-cert-file".into(),
            path(&tls.ca),
            "--tls-auth-clients".into(),
            auth_clients.into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut server =
            RedisServer { port: free_port(), dir: tempfile::tempdir().unwrap(), args, tls: Some(tls), proc: None };
        server.restart();
        server
    }

    /// The certificates of a server from [`RedisServer::start_tls`].
    pub fn tls(&self) -> &RedisTlsFiles {
        self.tls.as_ref().expect("a server started with start_tls")
    }

    pub fn restart(&mut self) {
        let port = self.port.to_string();
        let ports = match self.tls {
            Some(_) => vec!["--port", "0", "--tls-port", &port],
            None => vec!["--port", &port],
        };
        let (log, file) = log_file(self.dir.path());
        let child = Command::new("redis-server")
            .args(ports)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server ({e}): install it (scripts/test.sh does)"));
        self.proc = Some(listening("redis-server", loopback(self.port), child, &log, Duration::from_secs(30)));
    }

    pub fn stop(&mut self) {
        self.proc = None;
    }

    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("rediss://127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// A connection as the default user, for looking at what the store wrote
    /// (and, over TLS, with the client certificate).
    pub fn raw(&self) -> redis::Connection {
        let client = match &self.tls {
            None => redis::Client::open(self.url()).unwrap(),
            Some(tls) => {
                let certs = redis::TlsCertificates {
                    client_tls: Some(redis::ClientTlsConfig {
                        client_cert: std::fs::read(&tls.client_cert).unwrap(),
                        client_key: std::fs::read(&tls.client_key).unwrap(),
                    }),
                    root_cert: Some(std::fs::read(&tls.ca).unwrap()),
                };
                redis::Client::build_with_tls(self.url(), certs).unwrap()
            }
        };
        client.get_connection().unwrap()
    }
}

/// A Redis Sentinel (`redis-server --sentinel`) on a loopback port watching
/// `mymaster` at `primary_port` (quorum 1, down after 500 ms); killed on drop.
pub struct RedisSentinel {
    pub port: u16,
    _dir: tempfile::TempDir,
    _proc: Proc,
}

impl RedisSentinel {
    pub fn start(primary_port: u16) -> RedisSentinel {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {primary_port} 1\n\
                 sentinel down-after-milliseconds mymaster 500\nsentinel failover-timeout mymaster 3000\n"
            ),
        )
        .unwrap();
        let (log, file) = log_file(dir.path());
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .current_dir(dir.path())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server --sentinel ({e})"));
        let proc = listening("redis-server --sentinel", loopback(port), child, &log, Duration::from_secs(30));
        RedisSentinel { port, _dir: dir, _proc: proc }
    }

    pub fn url(&self, service: &str) -> String {
        format!("redis+sentinel://127.0.0.1:{}/{service}", self.port)
    }

    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).unwrap().get_connection().unwrap()
    }
}

/// A Redis Cluster of three primaries (no replicas) on loopback ports, made
/// with `redis-cli --cluster create`; the servers are killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                // The bus port defaults to port + 10 000, which may not exist
                // (or be taken) for an ephemeral port: name one that is free.
                let bus = free_port().to_string();
                RedisServer::start_on(
                    free_port(),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                        "--cluster-port",
                        &bus,
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}): install redis-tools (scripts/test.sh does)"));
        assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        for node in &nodes {
            loop {
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut node.raw()).unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "the cluster is not ok within 20 s: {info}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        RedisCluster { nodes }
    }

    pub fn url(&self) -> String {
        let addrs: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}", addrs.join(","))
    }
}

/// `INFO <section>` of a server, or "" when it does not answer.
pub fn info(conn: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(conn).unwrap_or_default()
}

/// A primary, `replicas` replicas (in sync), and a sentinel that knows them all.
pub fn primary_replicas_sentinel(replicas: usize) -> (RedisServer, Vec<RedisServer>, RedisSentinel) {
    let primary = RedisServer::start();
    let replicas: Vec<RedisServer> = (0..replicas)
        .map(|_| RedisServer::start_on(free_port(), &["--replicaof", "127.0.0.1", &primary.port.to_string()]))
        .collect();
    let until = |what: &str, mut done: Box<dyn FnMut() -> bool + '_>| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}: not within 20 s");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    for r in &replicas {
        until("the replica syncs", Box::new(|| info(&mut r.raw(), "replication").contains("master_link_status:up")));
    }
    let sentinel = RedisSentinel::start(primary.port);
    until(
        "the sentinel sees the replicas",
        Box::new(|| {
            let seen: Vec<redis::Value> =
                redis::cmd("SENTINEL").arg("REPLICAS").arg("mymaster").query(&mut sentinel.raw()).unwrap_or_default();
            seen.len() == replicas.len()
        }),
    );
    (primary, replicas, sentinel)
}
