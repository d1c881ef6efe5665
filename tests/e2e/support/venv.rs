//! Where the installed command is: the workspace root and the virtualenvs
//! scripts/setup-python.sh and scripts/install-ferrocorn.sh make. Shared with the crate
//! tests of shell/tests that run the installed command too (they include this file).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

/// The workspace root (the parent of every member, this one and `shell/` alike).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The venv in `var` when set, else `default` under the workspace root; it must hold the
/// installed `ferrocorn`.
pub fn venv_at(var: &str, default: &str) -> PathBuf {
    let v = std::env::var_os(var).map_or_else(|| repo_root().join(default), PathBuf::from);
    assert!(
        v.join("bin/ferrocorn").exists(),
        "{} has no ferrocorn: run scripts/install-ferrocorn.sh (scripts/test.sh does)",
        v.display()
    );
    v
}

/// The virtualenv with the installed `ferrocorn` (and gunicorn 27.0.1 as the oracle), a
/// pyenv CPython with a shared libpython: `FERROCORN_VENV`, else `.venv` at the
/// workspace root.
pub fn venv() -> PathBuf {
    venv_at("FERROCORN_VENV", ".venv")
}

/// [`venv`], which must also hold gunicorn 27.0.1 (the oracle of the differential tests).
pub fn oracle_venv() -> PathBuf {
    let v = venv();
    assert!(
        v.join("bin/gunicorn").exists(),
        "{} has no gunicorn: run scripts/setup-python.sh (scripts/test.sh does)",
        v.display()
    );
    v
}

/// The venv made from Debian's /usr/bin/python3 (a static libpython):
/// `FERROCORN_DEBIAN_VENV`, else `target/debian-venv`.
pub fn debian_venv() -> PathBuf {
    venv_at("FERROCORN_DEBIAN_VENV", "target/debian-venv")
}
