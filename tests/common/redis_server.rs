//! A real `redis-server` for tests: on a free loopback port, without
//! persistence, killed on drop; it can be stopped and started again on the
//! same port (outage tests).

use super::{free_port, wait_for_port, Proc};
use std::process::{Command, Stdio};

/// A `redis-server` on a loopback port, without persistence; killed on drop.
/// It can be stopped and started again on the same port.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    proc: Option<Proc>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_on(free_port(), &[])
    }

    pub fn start_on(port: u16, extra: &[&str]) -> RedisServer {
        let args = extra.iter().map(|s| s.to_string()).collect();
        let mut server = RedisServer { port, dir: tempfile::tempdir().unwrap(), args, proc: None };
        server.restart();
        server
    }

    pub fn restart(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server ({e}): install it (scripts/test.sh does)"));
        self.proc = Some(Proc(child));
        wait_for_port(format!("127.0.0.1:{port}").parse().unwrap());
    }

    pub fn stop(&mut self) {
        self.proc = None;
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A plain connection for looking at what the store wrote.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection().unwrap()
    }
}
