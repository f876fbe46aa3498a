//! The state directory (`server.state_dir`) holds every secret portcullis
//! keeps: `secrets.key`, `cookie.keys`, `admin.token` and the embedded
//! database with sealed TOTP secrets and recovery code hashes. Only the
//! service's own user may read any of it, so the directory is made 0700 and
//! every file in it 0600 before anything is written, and a directory left
//! open to the group or to others by an earlier version or by hand is
//! tightened at start, with a warning saying what was changed.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the directory: its owner only.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in it: read and write by its owner only.
pub const FILE_MODE: u32 = 0o600;
/// Permission bits that let the group or others in.
const OPEN_BITS: u32 = 0o077;

/// Creates `dir` (and missing parents) 0700, or tightens an existing one and
/// the files in it; returns one warning per thing it had to tighten.
pub fn prepare(dir: &Path) -> Result<Vec<String>, String> {
    let fail = |what: &str, p: &Path, e: io::Error| format!("cannot {what} state_dir `{}`: {e}", p.display());
    fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(|e| fail("create", dir, e))?;
    let meta = fs::metadata(dir).map_err(|e| fail("read", dir, e))?;
    if !meta.is_dir() {
        return Err(format!("state_dir `{}` is not a directory", dir.display()));
    }
    let mut warnings = Vec::new();
    if let Some(w) = tighten(dir, meta.permissions().mode(), DIR_MODE).map_err(|e| fail("chmod", dir, e))? {
        warnings.push(w);
    }
    for entry in fs::read_dir(dir).map_err(|e| fail("list", dir, e))? {
        let path = entry.map_err(|e| fail("list", dir, e))?.path();
        // Not following links: a link's own mode means nothing, and its target is not ours to change.
        let meta = fs::symlink_metadata(&path).map_err(|e| fail("read", &path, e))?;
        let wanted = if meta.is_dir() { DIR_MODE } else { FILE_MODE };
        if meta.is_file() || meta.is_dir() {
            if let Some(w) = tighten(&path, meta.permissions().mode(), wanted).map_err(|e| fail("chmod", &path, e))? {
                warnings.push(w);
            }
        }
    }
    Ok(warnings)
}

/// Removes the group's and others' bits from `path` when any is set.
fn tighten(path: &Path, mode: u32, wanted: u32) -> io::Result<Option<String>> {
    if mode & OPEN_BITS == 0 {
        return Ok(None);
    }
    let tightened = mode & 0o7777 & !OPEN_BITS & (wanted | 0o7000);
    fs::set_permissions(path, fs::Permissions::from_mode(tightened))?;
    Ok(Some(format!(
        "`{}` was mode {:o}, readable beyond its owner: set to {:o} (state_dir holds secrets)",
        path.display(),
        mode & 0o7777,
        tightened
    )))
}

/// Makes sure `path` exists as a file only its owner can read, before a
/// library that creates files with the default mode (redb) opens it. An
/// existing file is left as it is (`prepare` has tightened it).
pub fn create_private_file(path: &Path) -> io::Result<()> {
    fs::OpenOptions::new().write(true).create(true).truncate(false).mode(FILE_MODE).open(path).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_state_dir_and_its_parents_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/state");
        assert!(prepare(&dir).unwrap().is_empty());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
    }

    #[test]
    fn an_open_state_dir_and_its_files_are_tightened_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.join("portcullis.redb");
        fs::write(&db, b"x").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        let private = dir.join("secrets.key");
        fs::write(&private, b"k").unwrap();
        fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();

        let warnings = prepare(&dir).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("portcullis.redb") && w.contains("644")), "{warnings:?}");
        assert_eq!((mode(&dir), mode(&db), mode(&private)), (0o700, 0o600, 0o600));
        assert!(prepare(&dir).unwrap().is_empty(), "nothing left to tighten");
    }

    #[test]
    fn a_file_in_place_of_the_dir_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("state");
        fs::write(&file, b"").unwrap();
        assert!(prepare(&file).is_err());
    }

    #[test]
    fn private_files_are_created_0600_and_never_truncated() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("db");
        create_private_file(&p).unwrap();
        assert_eq!(mode(&p), 0o600);
        fs::write(&p, b"kept").unwrap();
        create_private_file(&p).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"kept");
    }
}
