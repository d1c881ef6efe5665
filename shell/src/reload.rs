//! `reload`: the master watches the application's source files and starts a rolling
//! reload (as HUP does) when one changes, so new workers boot with the new code before the
//! old ones retire, and code that fails to import leaves the old workers serving.
//!
//! One watcher for every worker, in the master (gunicorn runs one in each worker): the
//! files are watched once whatever the worker count, and a change gives one reload rather
//! than one restart per worker. The master imports no application, so each worker writes
//! the source files of the modules it imported into [`module_list`] (once the app has
//! loaded, and again when it imports more: `ferrocorn/reloader.py`); the watcher reads
//! those lists and `reload_extra_files` (globs expanded on each look, as gunicorn does).
//!
//! Engines (`reload_engine`): `inotify` watches the directories that hold the files (an
//! editor that saves by renaming a new file into place is seen), through an fd the master
//! polls with its signal pipe; `poll` compares modification times about once a second;
//! `auto` is inotify. A burst of writes (a checkout) gives one reload: the reload starts
//! once no change was seen for [`QUIET_MS`], or [`BURST_MS`] after the first one.
//!
//! The master has no thread of its own (it forks): the watcher is polled from its loop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::settings::config::{ReloadConfig, ReloadEngine};
use crate::settings::validate::{glob, is_glob_pattern};

/// A change starts the reload once no other change was seen for this long.
pub const QUIET_MS: u64 = 300;
/// ... or this long after the first change of a burst that goes on.
pub const BURST_MS: u64 = 2_000;
/// How often the `poll` engine compares modification times.
const SCAN_MS: u64 = 1_000;

/// Where the worker `worker_pid` of the master `master_pid` publishes its module files.
pub fn module_list(master_pid: i32, worker_pid: u32) -> PathBuf {
    lists_dir(master_pid).join(format!("{worker_pid}.files"))
}

fn lists_dir(master_pid: i32) -> PathBuf {
    std::env::temp_dir().join(format!("ferrocorn-reload-{master_pid}"))
}

enum Engine {
    /// Modification times as last seen (`None`: missing).
    Poll { mtimes: HashMap<PathBuf, Option<SystemTime>>, scanned_ms: u64 },
    /// Watched directories.
    Inotify { fd: Inotify, dirs: HashMap<WatchDescriptor, PathBuf>, watched: BTreeSet<PathBuf> },
}

/// The master's watcher (see the module documentation).
pub struct Watcher {
    engine: Engine,
    dir: PathBuf,
    extra: Vec<String>,
    cwd: PathBuf,
    /// The workers' lists, with the modification time they were read at.
    lists: BTreeMap<PathBuf, (SystemTime, Vec<PathBuf>)>,
    /// Every file watched.
    files: BTreeSet<PathBuf>,
    /// A change waiting for the burst to end: (first seen, last seen, the file).
    pending: Option<(u64, u64, PathBuf)>,
    looked_ms: u64,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let engine = match self.engine {
            Engine::Poll { .. } => "poll",
            Engine::Inotify { .. } => "inotify",
        };
        f.debug_struct("Watcher")
            .field("engine", &engine)
            .field("files", &self.files.len())
            .finish()
    }
}

impl Watcher {
    /// The watcher for `config` (`None` without `reload`); `master_pid` names the
    /// directory the workers publish their lists in (made here, removed on drop).
    pub fn new(config: &ReloadConfig, master_pid: i32) -> Result<Option<Watcher>, String> {
        if !config.enabled {
            return Ok(None);
        }
        remove_stale_lists();
        let dir = lists_dir(master_pid);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("reload: cannot create {}: {e}", dir.display()))?;
        let engine = match config.engine {
            ReloadEngine::Poll => Engine::Poll { mtimes: HashMap::new(), scanned_ms: 0 },
            ReloadEngine::Auto | ReloadEngine::Inotify => Engine::Inotify {
                fd: Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                    .map_err(|e| format!("reload: inotify: {e}"))?,
                dirs: HashMap::new(),
                watched: BTreeSet::new(),
            },
        };
        let mut w = Watcher {
            engine,
            dir,
            extra: config.extra_files.clone(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            lists: BTreeMap::new(),
            files: BTreeSet::new(),
            pending: None,
            looked_ms: 0,
        };
        let _ = w.refresh();
        Ok(Some(w))
    }

    /// The fd to poll for changes (the inotify engine).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.engine {
            Engine::Inotify { fd, .. } => Some(fd.as_fd()),
            Engine::Poll { .. } => None,
        }
    }

    /// How soon the master should look again, in ms.
    pub fn wait_ms(&self, now: u64) -> u64 {
        match self.pending {
            Some((first, last, _)) => {
                (last + QUIET_MS).min(first + BURST_MS).saturating_sub(now).max(1)
            }
            None => SCAN_MS,
        }
    }

    /// Looks for changes; the file whose change should start a reload now, once a burst of
    /// changes is over.
    pub fn check(&mut self, now: u64) -> Option<PathBuf> {
        let mut changed = None;
        if now >= self.looked_ms + SCAN_MS / 2 || self.pending.is_some() {
            self.looked_ms = now;
            changed = self.refresh();
        }
        if let Some(changed) = changed.or_else(|| self.changed(now)) {
            self.pending = match self.pending.take() {
                Some((first, _, path)) => Some((first, now, path)),
                None => Some((now, now, changed)),
            };
        }
        match &self.pending {
            Some((first, last, _)) if now >= last + QUIET_MS || now >= first + BURST_MS => {
                self.pending.take().map(|(_, _, path)| path)
            }
            _ => None,
        }
    }

    /// Reads the workers' lists that changed and the extra files' globs: the files to
    /// watch. A file newer than the list that named it first changed after the worker
    /// imported it (before it was watched): that change is returned.
    fn refresh(&mut self) -> Option<PathBuf> {
        let mut seen = BTreeSet::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let path = e.path();
                if path.extension() != Some(OsStr::new("files")) {
                    continue;
                }
                // The list of a worker that is gone goes with it.
                let pid = path.file_stem().and_then(OsStr::to_str).unwrap_or("");
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                seen.insert(path.clone());
                let Ok(mtime) = e.metadata().and_then(|m| m.modified()) else { continue };
                if self.lists.get(&path).is_some_and(|(t, _)| *t == mtime) {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let files = text.lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect();
                self.lists.insert(path, (mtime, files));
            }
        }
        // The lists of workers that are gone: their files stay watched only through the
        // lists of the workers that replaced them.
        self.lists.retain(|p, _| seen.contains(p));
        // Each file with the time of the oldest list naming it (when a worker had it
        // imported); extra files with none.
        let mut files: BTreeMap<PathBuf, Option<SystemTime>> = BTreeMap::new();
        for (listed, names) in self.lists.values() {
            for f in names {
                let at = files.entry(f.clone()).or_insert(Some(*listed));
                *at = (*at).min(Some(*listed));
            }
        }
        for entry in &self.extra {
            if is_glob_pattern(entry) {
                files.extend(glob(&self.cwd, entry).into_iter().map(|f| (f, None)));
            } else {
                files.insert(self.cwd.join(entry), None);
            }
        }
        let mut changed = None;
        if !files.keys().eq(self.files.iter()) {
            let new: Vec<(PathBuf, Option<SystemTime>)> = files
                .iter()
                .filter(|(f, _)| !self.files.contains(*f))
                .map(|(f, t)| (f.clone(), *t))
                .collect();
            self.files = files.into_keys().collect();
            for (f, imported) in &new {
                if imported.is_some_and(|t| mtime(f).is_some_and(|m| m > t)) {
                    changed.get_or_insert_with(|| f.clone());
                }
            }
            self.watch(&new);
        }
        changed
    }

    /// Starts watching `new` files.
    fn watch(&mut self, new: &[(PathBuf, Option<SystemTime>)]) {
        match &mut self.engine {
            Engine::Poll { mtimes, .. } => {
                for (f, _) in new {
                    mtimes.entry(f.clone()).or_insert_with(|| mtime(f));
                }
                let files = &self.files;
                mtimes.retain(|f, _| files.contains(f));
            }
            Engine::Inotify { fd, dirs, watched } => {
                let mask = AddWatchFlags::IN_CLOSE_WRITE
                    | AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_DELETE
                    | AddWatchFlags::IN_ATTRIB;
                for dir in new.iter().filter_map(|(f, _)| f.parent()) {
                    if watched.contains(dir) {
                        continue;
                    }
                    if let Ok(wd) = fd.add_watch(dir, mask) {
                        dirs.insert(wd, dir.to_path_buf());
                        watched.insert(dir.to_path_buf());
                    }
                }
            }
        }
    }

    /// A watched file that changed since the last look.
    fn changed(&mut self, now: u64) -> Option<PathBuf> {
        match &mut self.engine {
            Engine::Poll { mtimes, scanned_ms } => {
                if now < *scanned_ms + SCAN_MS && self.pending.is_none() {
                    return None;
                }
                *scanned_ms = now;
                let mut changed = None;
                for (f, seen) in mtimes.iter_mut() {
                    let m = mtime(f);
                    if m != *seen {
                        *seen = m;
                        changed.get_or_insert_with(|| f.clone());
                    }
                }
                changed
            }
            Engine::Inotify { fd, dirs, .. } => {
                let mut changed = None;
                while let Ok(events) = fd.read_events() {
                    if events.is_empty() {
                        break;
                    }
                    for ev in events {
                        let (Some(dir), Some(name)) = (dirs.get(&ev.wd), ev.name.as_ref()) else {
                            continue;
                        };
                        let path = dir.join(name);
                        if self.files.contains(&path) {
                            changed.get_or_insert(path);
                        }
                    }
                }
                changed
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes the list directories of masters that are gone (killed before they could).
fn remove_stale_lists() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("ferrocorn-reload-")) else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
