//! A real SMTP server on loopback for the mail tests: Python's aiosmtpd
//! (`tests/smtp/server.py`, run with Debian's /usr/bin/python3 and its
//! python3-aiosmtpd), which writes each delivered message to a directory.
//! Killed on drop. A server that is down is a free port with nothing on it.

use super::{free_port, tied, Proc};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Python that has aiosmtpd (a pyenv `python3` on PATH may not).
pub const PYTHON: &str = "/usr/bin/python3";

/// How the server protects its port.
#[derive(Clone, Debug, Default)]
pub enum SmtpTls {
    /// Plain SMTP, no STARTTLS offered.
    #[default]
    None,
    /// STARTTLS offered and required, with this certificate and key.
    StartTls { cert: PathBuf, key: PathBuf },
    /// TLS from the first byte (port 465 style).
    Implicit { cert: PathBuf, key: PathBuf },
}

#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    pub tls: SmtpTls,
    /// AUTH required with exactly this username and password.
    pub auth: Option<(String, String)>,
    /// RCPT TO this address is answered with 550.
    pub refuse: Option<String>,
}

pub struct SmtpServer {
    _proc: Proc,
    port: u16,
    spool: tempfile::TempDir,
}

impl SmtpServer {
    pub fn start(opts: SmtpOptions) -> SmtpServer {
        let spool = tempfile::tempdir().unwrap();
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py");
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-W", "ignore"]).arg(script).arg("--port").arg(port.to_string()).arg("--dir").arg(spool.path());
        match &opts.tls {
            SmtpTls::None => {}
            SmtpTls::StartTls { cert, key } => {
                cmd.arg("--starttls").arg("--cert").arg(cert).arg("--key").arg(key);
            }
            SmtpTls::Implicit { cert, key } => {
                cmd.arg("--tls").arg("--cert").arg(cert).arg("--key").arg(key);
            }
        }
        if let Some((user, password)) = &opts.auth {
            cmd.arg("--user").arg(user).arg("--password").arg(password);
        }
        if let Some(address) = &opts.refuse {
            cmd.arg("--refuse").arg(address);
        }
        // Its log (TLS handshakes the tests make fail on purpose) goes beside the spool.
        let log = std::fs::File::create(spool.path().join("server.log")).unwrap();
        let mut child = tied(cmd.stdout(Stdio::piped()).stderr(log)).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let log = std::fs::read_to_string(spool.path().join("server.log")).unwrap_or_default();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP server did not start (python3-aiosmtpd: scripts/deps.sh test):\n{log}"
        );
        SmtpServer { _proc: Proc(child), port, spool }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Paths of the delivered messages, oldest first.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.spool.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        files
    }

    /// The delivered messages as received (raw .eml text), oldest first.
    pub fn messages(&self) -> Vec<String> {
        self.files().iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    }

    /// Waits up to 10 s until `n` messages have arrived.
    pub fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(Instant::now() < deadline, "{} of {n} messages arrived", messages.len());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A delivered message as a mail client reads it (`tests/smtp/read.py`:
    /// Python's email package decodes RFC 2047 words and the body).
    pub fn read(path: &Path) -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/read.py");
        let out = Command::new(PYTHON).arg(script).arg(path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}
