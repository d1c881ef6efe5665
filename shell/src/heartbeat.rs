//! Worker heartbeats in shared memory, not in a file.
//!
//! gunicorn heartbeats by `utime` on an unlinked temp file per worker; on overlayfs or a
//! slow disk that call blocks and healthy workers get spurious `WORKER TIMEOUT`s, and
//! before the first `notify()` the file's wall-clock mtime compared with `monotonic()`
//! hides a worker hanging at boot. Here the master maps one anonymous `MAP_SHARED` region
//! before the first fork; each worker owns one [`Slot`] in it:
//!
//! ```text
//!  Slot (repr C, atomics only)
//!  ├─ beat_ms       CLOCK_MONOTONIC milliseconds of the last notify (set by the master
//!  │                at spawn, so a worker that never beats still times out)
//!  ├─ flags         bit 0: the worker booted (its application is loaded)
//!  ├─ seq           seqlock over the request fields below (odd while written)
//!  ├─ req_start_ms  when the request being served started; 0 when idle
//!  ├─ req_lens      method | path << 16 | client << 32 (byte lengths)
//!  └─ req_text      method, path and client bytes, packed 8 per word
//! ```
//!
//! A notify is one relaxed store; recording the current request is a few hundred bytes of
//! relaxed stores with no syscall, so the worker can do it for every request. The master
//! reads the request of a worker it times out and logs it.
//!
//! `CLOCK_MONOTONIC` is one clock for the whole machine, so the master and its workers
//! compare the same numbers.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering, fence};

/// Bytes of request text one slot holds (method, path and client together).
pub const TEXT_BYTES: usize = 384;
const TEXT_WORDS: usize = TEXT_BYTES / 8;
/// The longest method kept.
pub const MAX_METHOD: usize = 32;
/// The longest client text kept.
pub const MAX_CLIENT: usize = 64;

const FLAG_BOOTED: u64 = 1;

/// Milliseconds of `CLOCK_MONOTONIC`: the clock of every heartbeat and deadline.
pub fn monotonic_ms() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    (ts.tv_sec() as u64) * 1000 + (ts.tv_nsec() as u64) / 1_000_000
}

/// One worker's heartbeat and current request, shared between the worker and the master.
#[repr(C)]
#[derive(Debug)]
pub struct Slot {
    beat_ms: AtomicU64,
    /// The open connections of a worker that accepts, plus one; 0 for a worker that does
    /// not accept (not started, stopping, or a worker type that does not say). Next to the
    /// beat: [`Heartbeats::fewest_connections`] reads both of every slot.
    accepting: AtomicU64,
    flags: AtomicU64,
    seq: AtomicU64,
    req_start_ms: AtomicU64,
    req_lens: AtomicU64,
    req_text: [AtomicU64; TEXT_WORDS],
}

/// The request a worker was serving, read back by the master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// The request method (lossy UTF-8, truncated to [`MAX_METHOD`] bytes).
    pub method: String,
    /// The request target (truncated to what fits).
    pub path: String,
    /// The client (`ip:port`, or empty on a unix socket).
    pub client: String,
    /// When the request started, in [`monotonic_ms`].
    pub started_ms: u64,
}

impl Slot {
    /// Prepares the slot for a new worker (master side, before fork): the beat is `now_ms`
    /// and no request is in flight.
    pub fn reset(&self, now_ms: u64) {
        self.beat_ms.store(now_ms, Ordering::Relaxed);
        self.flags.store(0, Ordering::Relaxed);
        self.req_start_ms.store(0, Ordering::Relaxed);
        self.req_lens.store(0, Ordering::Relaxed);
        self.accepting.store(0, Ordering::Relaxed);
    }

    /// Publishes whether the worker accepts connections, and how many it has open, for the
    /// other workers to balance on (see [`Heartbeats::fewest_connections`]).
    pub fn set_accepting(&self, open: Option<usize>) {
        self.accepting.store(open.map_or(0, |n| n as u64 + 1), Ordering::Relaxed);
    }

    /// What the worker last published with [`Slot::set_accepting`].
    pub fn accepting(&self) -> Option<usize> {
        match self.accepting.load(Ordering::Relaxed) {
            0 => None,
            n => Some((n - 1) as usize),
        }
    }

    /// Records that the worker booted: its application is loaded and it is about to
    /// serve (gunicorn's `booted = True`). During a reload the master retires an old
    /// worker only when a new one did this.
    pub fn mark_booted(&self) {
        self.flags.fetch_or(FLAG_BOOTED, Ordering::Release);
        self.notify();
    }

    /// Whether the worker said it booted.
    pub fn booted(&self) -> bool {
        self.flags.load(Ordering::Acquire) & FLAG_BOOTED != 0
    }

    /// Records that the worker is alive now.
    pub fn notify(&self) {
        self.beat_ms.store(monotonic_ms(), Ordering::Relaxed);
    }

    /// Records that the worker was alive at `now_ms`.
    pub fn notify_at(&self, now_ms: u64) {
        self.beat_ms.store(now_ms, Ordering::Relaxed);
    }

    /// The time of the last beat, in [`monotonic_ms`].
    pub fn last_beat(&self) -> u64 {
        self.beat_ms.load(Ordering::Relaxed)
    }

    /// Records the request the worker starts serving (and beats, and counts as booted).
    pub fn begin_request(&self, method: &[u8], path: &[u8], client: &[u8], now_ms: u64) {
        self.show_request(method, path, client, now_ms);
        self.beat_ms.store(now_ms, Ordering::Relaxed);
        // A worker serving a request has its application loaded, whether or not its body
        // called `mark_booted`.
        if self.flags.load(Ordering::Relaxed) & FLAG_BOOTED == 0 {
            self.flags.fetch_or(FLAG_BOOTED, Ordering::Release);
        }
    }

    /// Records a request in flight that started at `started_ms`, without beating. One
    /// writer at a time (the seqlock has one writer).
    fn show_request(&self, method: &[u8], path: &[u8], client: &[u8], started_ms: u64) {
        let method = &method[..method.len().min(MAX_METHOD)];
        let client = &client[..client.len().min(MAX_CLIENT)];
        let path = &path[..path.len().min(TEXT_BYTES - method.len() - client.len())];
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        let mut words = [0u64; TEXT_WORDS];
        let mut at = 0;
        for part in [method, path, client] {
            for &b in part {
                words[at / 8] |= u64::from(b) << (8 * (at % 8));
                at += 1;
            }
        }
        for (w, v) in self.req_text.iter().zip(words.iter()).take(at.div_ceil(8)) {
            w.store(*v, Ordering::Relaxed);
        }
        let lens = method.len() as u64 | (path.len() as u64) << 16 | (client.len() as u64) << 32;
        self.req_lens.store(lens, Ordering::Relaxed);
        self.req_start_ms.store(started_ms.max(1), Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// Records that the worker finished its request.
    pub fn end_request(&self) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.req_start_ms.store(0, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// The request in flight, if any (a consistent snapshot; `None` if the worker is
    /// writing it over and over while we look).
    pub fn in_flight(&self) -> Option<InFlight> {
        for _ in 0..1000 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let start = self.req_start_ms.load(Ordering::Relaxed);
            let lens = self.req_lens.load(Ordering::Relaxed);
            let mut words = [0u64; TEXT_WORDS];
            for (v, w) in words.iter_mut().zip(self.req_text.iter()) {
                *v = w.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != s1 {
                continue;
            }
            if start == 0 {
                return None;
            }
            let (m, p, c) = (
                (lens & 0xffff) as usize,
                ((lens >> 16) & 0xffff) as usize,
                ((lens >> 32) & 0xffff) as usize,
            );
            if m + p + c > TEXT_BYTES {
                return None;
            }
            let bytes: Vec<u8> =
                (0..m + p + c).map(|i| (words[i / 8] >> (8 * (i % 8))) as u8).collect();
            let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(&bytes[r]).into_owned();
            return Some(InFlight {
                method: text(0..m),
                path: text(m..m + p),
                client: text(m + p..m + p + c),
                started_ms: start,
            });
        }
        None
    }
}

/// The requests in flight of a worker that serves several at once (the gthread worker),
/// recorded in its one [`Slot`]: the slot shows the oldest (the one a timeout most likely
/// concerns); when it ends, the next oldest; when none is left, none. The slot is written
/// under a lock, so it keeps one writer.
#[derive(Debug)]
pub struct Requests {
    slot: &'static Slot,
    inner: std::sync::Mutex<InFlightList>,
}

#[derive(Debug, Default)]
struct InFlightList {
    next: u64,
    /// Oldest first.
    list: std::collections::VecDeque<Entry>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    method: Vec<u8>,
    path: Vec<u8>,
    client: Vec<u8>,
    started_ms: u64,
}

/// A request recorded by [`Requests::begin`]; dropping it ends the request.
#[derive(Debug)]
#[must_use = "the request ends when this is dropped"]
pub struct InFlightGuard<'a> {
    requests: &'a Requests,
    id: u64,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.requests.end(self.id);
    }
}

impl Requests {
    /// The requests of the worker that owns `slot`.
    pub fn new(slot: &'static Slot) -> Requests {
        Requests { slot, inner: std::sync::Mutex::new(InFlightList::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlightList> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a request that starts now (`now_ms`), and beats.
    pub fn begin(
        &self,
        method: &[u8],
        path: &[u8],
        client: &[u8],
        now_ms: u64,
    ) -> InFlightGuard<'_> {
        let mut g = self.lock();
        let id = g.next;
        g.next += 1;
        let cut = |b: &[u8], n: usize| b[..b.len().min(n)].to_vec();
        g.list.push_back(Entry {
            id,
            method: cut(method, MAX_METHOD),
            path: cut(path, TEXT_BYTES),
            client: cut(client, MAX_CLIENT),
            started_ms: now_ms,
        });
        if g.list.len() == 1 {
            self.slot.begin_request(method, path, client, now_ms);
        } else {
            self.slot.notify_at(now_ms);
        }
        InFlightGuard { requests: self, id }
    }

    fn end(&self, id: u64) {
        let mut g = self.lock();
        let Some(at) = g.list.iter().position(|e| e.id == id) else { return };
        g.list.remove(at);
        if at != 0 {
            return;
        }
        match g.list.front() {
            Some(e) => self.slot.show_request(&e.method, &e.path, &e.client, e.started_ms),
            None => self.slot.end_request(),
        }
    }
}

/// The shared region: one [`Slot`] per worker index. `Copy`: every holder sees the same
/// memory, in the master and, after fork, in the workers.
#[derive(Clone, Copy, Debug)]
pub struct Heartbeats {
    slots: &'static [Slot],
}

impl Heartbeats {
    /// Maps a shared anonymous region of `n` slots (at least one). The mapping lives as
    /// long as the process: it is made once, before the first fork, and never unmapped.
    pub fn map(n: usize) -> std::io::Result<Heartbeats> {
        Ok(Heartbeats { slots: map_shared_slots(n.max(1))? })
    }

    /// A heap copy for tests that do not fork (same API, process-private).
    pub fn private(n: usize) -> Heartbeats {
        let v: Vec<Slot> = (0..n.max(1)).map(|_| Slot::zeroed()).collect();
        Heartbeats { slots: Vec::leak(v) }
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots (never: `map` makes at least one).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slot of worker index `i`. Panics when out of range (a bug).
    pub fn slot(&self, i: usize) -> &'static Slot {
        &self.slots[i]
    }

    /// The fewest open connections of a worker other than slot `me` that accepts and beat
    /// within `fresh_ms` of `now_ms` (a dead worker's slot keeps its last values).
    pub fn fewest_connections(&self, me: usize, now_ms: u64, fresh_ms: u64) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != me)
            .filter_map(|(_, s)| s.accepting().filter(|_| s.last_beat() + fresh_ms >= now_ms))
            .min()
    }
}

impl Slot {
    fn zeroed() -> Slot {
        Slot {
            beat_ms: AtomicU64::new(0),
            accepting: AtomicU64::new(0),
            flags: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            req_start_ms: AtomicU64::new(0),
            req_lens: AtomicU64::new(0),
            req_text: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

#[allow(unsafe_code)]
fn map_shared_slots(n: usize) -> std::io::Result<&'static [Slot]> {
    use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
    let bytes = n
        .checked_mul(std::mem::size_of::<Slot>())
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| std::io::Error::other("heartbeat region size overflow"))?;
    // SAFETY: a fresh anonymous mapping (no address hint, no file) aliases nothing. It is
    // page-aligned, so aligned for `Slot` (alignment 8), and zero-filled by the kernel; all
    // zero bytes are a valid `Slot` (only `AtomicU64`s). The mapping is never unmapped, so
    // the `'static` slice stays valid; it is shared with forked children, which only access
    // it through atomics, so concurrent access across processes is data-race free.
    unsafe {
        let ptr = mmap_anonymous(
            None,
            bytes,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )?;
        Ok(std::slice::from_raw_parts(ptr.as_ptr().cast::<Slot>(), n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let hb = Heartbeats::map(2).unwrap();
        let s = hb.slot(1);
        s.reset(5);
        assert_eq!(s.last_beat(), 5);
        assert_eq!(s.in_flight(), None);
        assert!(!s.booted());
        s.mark_booted();
        assert!(s.booted());
        s.begin_request(b"GET", b"/hang?x=1", b"127.0.0.1:5555", 77);
        assert_eq!(
            s.in_flight(),
            Some(InFlight {
                method: "GET".into(),
                path: "/hang?x=1".into(),
                client: "127.0.0.1:5555".into(),
                started_ms: 77
            })
        );
        assert_eq!(s.last_beat(), 77);
        s.end_request();
        assert_eq!(s.in_flight(), None);
        assert_eq!(hb.slot(0).last_beat(), 0);
    }

    #[test]
    fn concurrent_requests_show_the_oldest_in_flight() {
        let hb = Heartbeats::private(1);
        let s = hb.slot(0);
        s.reset(1);
        let reqs = Requests::new(s);
        let path = |s: &Slot| s.in_flight().map(|r| (r.path, r.started_ms));
        let a = reqs.begin(b"GET", b"/a", b"1.2.3.4:1", 10);
        assert_eq!(s.last_beat(), 10);
        let b = reqs.begin(b"POST", b"/b", b"1.2.3.4:2", 20);
        let c = reqs.begin(b"GET", b"/c", b"", 30);
        assert_eq!(path(s), Some(("/a".into(), 10)), "the oldest stays shown");
        assert_eq!(s.last_beat(), 30);
        drop(b);
        assert_eq!(path(s), Some(("/a".into(), 10)));
        s.notify_at(50);
        drop(a);
        let r = s.in_flight().unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.client.as_str(), r.started_ms),
            ("GET", "/c", "", 30)
        );
        assert_eq!(s.last_beat(), 50, "showing an older request does not move the beat back");
        drop(c);
        assert_eq!(s.in_flight(), None);
        let d = reqs.begin(b"GET", b"/d", b"", 40);
        assert_eq!(path(s), Some(("/d".into(), 40)));
        drop(d);
        assert_eq!(s.in_flight(), None);
    }

    #[test]
    fn long_fields_are_truncated() {
        let hb = Heartbeats::private(1);
        let path = vec![b'a'; 1000];
        hb.slot(0).begin_request(&[b'M'; 40], &path, &[b'c'; 70], 1);
        let f = hb.slot(0).in_flight().unwrap();
        assert_eq!(f.method.len(), MAX_METHOD);
        assert_eq!(f.client.len(), MAX_CLIENT);
        assert_eq!(f.method.len() + f.path.len() + f.client.len(), TEXT_BYTES);
    }

    #[test]
    fn fewest_connections_counts_live_accepting_workers_but_me() {
        let hb = Heartbeats::private(4);
        for i in 0..4 {
            hb.slot(i).reset(1000);
        }
        assert_eq!(hb.fewest_connections(0, 1000, 500), None, "nobody accepts yet");
        hb.slot(0).set_accepting(Some(1));
        hb.slot(1).set_accepting(Some(7));
        hb.slot(2).set_accepting(Some(3));
        assert_eq!(hb.slot(2).accepting(), Some(3));
        assert_eq!(hb.fewest_connections(0, 1000, 500), Some(3));
        assert_eq!(hb.fewest_connections(2, 1000, 500), Some(1));
        hb.slot(2).set_accepting(None);
        assert_eq!(hb.fewest_connections(0, 1000, 500), Some(7), "a stopping worker is left out");
        hb.slot(3).set_accepting(Some(0));
        assert_eq!(hb.fewest_connections(0, 1600, 500), None, "stale beats are left out");
        hb.slot(3).notify_at(1600);
        assert_eq!(hb.fewest_connections(0, 1600, 500), Some(0));
        hb.slot(3).reset(1600);
        assert_eq!(hb.slot(3).accepting(), None, "a reset slot does not accept");
    }

    #[test]
    fn shared_across_fork_is_visible_through_the_mapping() {
        // The mapping is MAP_SHARED; without forking here, check at least that the memory
        // starts zeroed and is writable.
        let hb = Heartbeats::map(3).unwrap();
        assert!((0..3).all(|i| hb.slot(i).last_beat() == 0));
        hb.slot(2).notify();
        assert!(hb.slot(2).last_beat() > 0);
    }
}
