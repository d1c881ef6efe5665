//! The one scratch-directory helper of the tests. Shared with the crate tests of
//! shell/tests (they include this file).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A scratch directory, `ferrocorn-TAG-PID-N` in the system's temporary directory (or
/// under another base), made empty and removed on drop. It derefs to its [`Path`].
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), tag)
    }

    /// A scratch directory under `base` (e.g. `target/`, for what must not be on a
    /// `noexec` /tmp).
    pub fn new_in(base: &Path, tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = base.join(format!("ferrocorn-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// A scratch directory holding `files` (name, text; subdirectories made as needed).
    pub fn with_files(tag: &str, files: &[(&str, &str)]) -> TempDir {
        let d = TempDir::new(tag);
        for (name, text) in files {
            let p = d.0.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    /// A scratch directory with a copy of the files of `from` (not its subdirectories).
    pub fn copy_of(tag: &str, from: &Path) -> TempDir {
        let d = TempDir::new(tag);
        for f in std::fs::read_dir(from).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() {
                std::fs::copy(&f, d.0.join(f.file_name().unwrap())).unwrap();
            }
        }
        d
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
