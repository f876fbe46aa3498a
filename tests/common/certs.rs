//! Device certificates as administrators issue them: through the real
//! `portcullis admin cert` CLI of a running instance, with the PEM files,
//! the PKCS#12 bundle and its password (printed once).

use super::{path_str, portcullis, Env};
use std::path::PathBuf;

/// A certificate's files. `_dir` keeps them (tests' own certificates: none).
pub struct Cert {
    pub serial: String,
    pub crt: PathBuf,
    pub key: PathBuf,
    pub p12: PathBuf,
    pub password: String,
    pub _dir: Option<tempfile::TempDir>,
}

impl Cert {
    /// A certificate made by the test itself (no serial, no bundle).
    pub fn pem_only(crt: PathBuf, key: PathBuf) -> Cert {
        Cert { serial: String::new(), crt, key, p12: PathBuf::new(), password: String::new(), _dir: None }
    }
}

/// `portcullis admin --config … cert ARGS…`.
pub fn cli(env: &Env, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["admin", "--config", path_str(&env.config), "cert"];
    all.extend_from_slice(args);
    portcullis(&all)
}

/// Issues a certificate for `user`'s `device` (its CN).
pub fn issue(env: &Env, user: &str, device: &str) -> Cert {
    let dir = tempfile::tempdir().unwrap();
    let p12 = dir.path().join(format!("{device}.p12"));
    let (code, out, err) = cli(env, &["issue", "--user", user, "--device", device, "--out", path_str(&p12)]);
    assert_eq!(code, 0, "{out}{err}");
    let serial = out.split("serial ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().to_string();
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password:")?.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    Cert {
        serial,
        crt: dir.path().join(format!("{device}.crt")),
        key: dir.path().join(format!("{device}.key")),
        p12,
        password,
        _dir: Some(dir),
    }
}
