//! Imports follow the layers the README's *Layout* draws: a folder never
//! imports one above it. Only the directions that once went wrong are
//! checked (the store reaching into `auth`, `config` into `challenge`, the
//! admin routes into the admin router); the README lists the rest.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The lines of the files under `dir` that name any of `forbidden`.
fn offending(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let files = if root.is_dir() { sources(&root) } else { vec![root.with_extension("rs")] };
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_store_imports_nothing_above_it() {
    let above = ["crate::auth", "crate::challenge", "crate::portal", "crate::proxy", "crate::admin", "crate::push"];
    let found = offending("store", &above);
    assert!(found.is_empty(), "the store imports a higher layer:\n{}", found.join("\n"));
}

#[test]
fn the_config_imports_no_login_or_serving_layer() {
    let above = ["crate::challenge", "crate::auth", "crate::portal", "crate::proxy", "crate::admin", "crate::store"];
    let found = offending("config", &above);
    assert!(found.is_empty(), "the config imports a higher layer:\n{}", found.join("\n"));
}

#[test]
fn admin_routes_do_not_import_the_router() {
    let mut found = Vec::new();
    for route in ["admin/users", "admin/certs", "admin/cert_issue", "admin/passes", "admin/approvers", "admin/reply"] {
        found.extend(offending(route, &["super::api", "crate::admin::api"]));
    }
    assert!(found.is_empty(), "an admin route imports api.rs (which imports it):\n{}", found.join("\n"));
}
