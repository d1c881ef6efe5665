//! A minimal blocking sync worker in Rust: it answers every request with a fixed
//! `200 Hello, World!` and `Connection: close`.
//!
//! It exists so the arbiter can be tested end to end without Python, and as the shape the
//! WSGI sync worker will take (accept, read with `ferrocorn_core::Connection`, answer,
//! close). It heartbeats between accepts, while idle (poll on the listeners with a timeout
//! of `timeout / 2`) and while a client trickles its request. The whole request must
//! arrive within `timeout` seconds (30 when the timeout is disabled), so a client that
//! sends nothing holds the worker for that long at most and never gets it killed.
//!
//! Test paths: `/sleep?ms=N` answers after N ms (without heartbeats, like an application
//! call; INT/QUIT cut it short), `/hang` never answers and ignores TERM (a stuck
//! application, for the timeout).
//!
//! Lifecycle, as the WSGI sync worker will do it: [`WorkerContext::booted`] before the
//! first accept (`post_worker_init`; a reload retires old workers on it); after
//! `max_requests` requests it stops accepting, finishes the request in flight and
//! returns 0 (`Autorestarting worker after current request.`); USR1 reopens its log;
//! INT/QUIT call `worker_int`; ABRT is handled in the body
//! ([`super::WorkerSignals::handle_abort_in_body`]): `worker_abort`, then exit 1.

use std::io::{self, IoSlice, Read};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ferrocorn_core::response::{self, ResponseHead};
use ferrocorn_core::{Connection, Event, Peer, ProtoConfig};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use ferrocorn::heartbeat::monotonic_ms;
use ferrocorn::settings::ServerConfig;
use ferrocorn::transport::{self, Stream, Waits};
use ferrocorn::worker::{WorkerBody, WorkerContext, date_now};

const BODY: &[u8] = b"Hello, World!";

/// The `Hello, World!` body.
#[derive(Clone, Debug)]
pub(crate) struct HelloBody {
    proto: Arc<ProtoConfig>,
}

impl HelloBody {
    /// A body with the parser policy of `config`.
    pub(crate) fn new(config: &ServerConfig) -> HelloBody {
        HelloBody { proto: Arc::clone(&config.proto) }
    }
}

impl Default for HelloBody {
    fn default() -> Self {
        HelloBody { proto: Arc::new(ProtoConfig::default()) }
    }
}

impl WorkerBody for HelloBody {
    fn run(&self, mut ctx: WorkerContext) -> u8 {
        if let Err(e) = ctx.signals.handle_abort_in_body() {
            ctx.log.warning(format_args!("ABRT stays the default action: {e}"));
        }
        let this = HelloBody::new(&ctx.config);
        ctx.booted();
        let interval = ctx.beat_interval();
        let poll_ms = u16::try_from(interval.as_millis()).unwrap_or(u16::MAX);
        let mut served: u64 = 0;
        while ctx.signals.alive() {
            ctx.heartbeat.notify();
            if ctx.signals.aborted() {
                ctx.hooks.worker_abort(&ctx.info());
                return 1;
            }
            if ctx.signals.take_usr1() {
                if let Err(e) = ctx.log.reopen() {
                    ctx.log.error(e);
                }
            }
            if ctx.parent_changed() {
                ctx.log.info(format_args!("Parent changed, shutting down: {}", ctx.pid));
                return 0;
            }
            let ready: Vec<usize> = {
                let mut fds: Vec<PollFd<'_>> = ctx
                    .listeners
                    .iter()
                    .map(|l| PollFd::new(std::os::fd::AsFd::as_fd(l), PollFlags::POLLIN))
                    .collect();
                fds.push(PollFd::new(ctx.signals.wake_fd(), PollFlags::POLLIN));
                match poll(&mut fds, PollTimeout::from(poll_ms)) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        ctx.log.error(format_args!("poll failed: {e}"));
                        return 1;
                    }
                }
                fds[..ctx.listeners.len()]
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                    .map(|(i, _)| i)
                    .collect()
            };
            ctx.signals.drain();
            for i in ready {
                if !ctx.signals.alive() {
                    break;
                }
                match ctx.listeners[i].accept() {
                    Ok((stream, peer)) => {
                        served += 1;
                        if ctx.max_requests > 0 && served >= ctx.max_requests {
                            ctx.log.info("Autorestarting worker after current request.");
                            this.serve(&ctx, stream, peer);
                            return 0;
                        }
                        this.serve(&ctx, stream, peer);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(nix::libc::ECONNABORTED | nix::libc::EPROTO)
                        ) => {}
                    Err(e) => ctx.log.error(format_args!("accept failed: {e}")),
                }
            }
        }
        if ctx.signals.aborted() {
            ctx.hooks.worker_abort(&ctx.info());
            return 1;
        }
        if ctx.signals.quick() {
            ctx.hooks.worker_int(&ctx.info());
        }
        0
    }
}

impl HelloBody {
    fn serve(&self, ctx: &WorkerContext, mut stream: Stream, peer: Peer) {
        let request_time =
            if ctx.timeout.is_zero() { Duration::from_secs(30) } else { ctx.timeout };
        let deadline = Instant::now() + request_time;
        let _ = stream.set_read_timeout(Some(ctx.beat_interval()));
        let _ = stream.set_write_timeout(Some(ctx.beat_interval()));
        static NEVER: AtomicBool = AtomicBool::new(false);
        let waits = Waits { beat: ctx.heartbeat, limit: request_time, stop: &NEVER };
        let client = match peer {
            Peer::Tcp(a) => a.to_string(),
            Peer::Unix => String::new(),
        };
        let mut conn = Connection::new(Arc::clone(&self.proto), peer);
        let mut buf = vec![0u8; 8192];
        let mut out = Vec::with_capacity(512);
        let mut request: Option<Vec<u8>> = None;
        loop {
            match conn.next_event() {
                Ok(Event::Request(head)) => {
                    ctx.heartbeat.begin_request(
                        head.method(),
                        head.target(),
                        client.as_bytes(),
                        monotonic_ms(),
                    );
                    if ctx.log.enabled(ferrocorn::log::Level::Debug) {
                        ctx.log.debug(format_args!(
                            "{} {}",
                            String::from_utf8_lossy(head.method()),
                            String::from_utf8_lossy(head.target())
                        ));
                    }
                    request = Some(head.target().to_vec());
                }
                Ok(Event::Data(_)) => {}
                Ok(Event::EndOfMessage(_) | Event::Paused) => break,
                Ok(Event::NeedData) => {
                    if ctx.signals.quick() || Instant::now() >= deadline {
                        ctx.heartbeat.end_request();
                        return;
                    }
                    match stream.read(&mut buf) {
                        Ok(0) => conn.receive_eof(),
                        Ok(n) => conn.receive(&buf[..n]),
                        Err(e) if transport::retryable(&e) => {}
                        Err(_) => {
                            ctx.heartbeat.end_request();
                            return;
                        }
                    }
                    ctx.heartbeat.notify();
                }
                Ok(_) => return, // ConnectionClosed
                Err(e) => {
                    response::error_response(&e, &mut out);
                    let _ = transport::write_all(&mut stream, &mut [IoSlice::new(&out)], waits);
                    ctx.heartbeat.end_request();
                    transport::close_graceful(stream, false, ctx.heartbeat, ctx.beat_interval());
                    return;
                }
            }
        }
        let Some(target) = request else { return };
        let path = target.split(|&b| b == b'?').next().unwrap_or(b"");
        if path == b"/hang" {
            // Stuck: no heartbeat, TERM and INT ignored; only ABRT (or SIGKILL) ends it.
            while !ctx.signals.aborted() {
                let mut fds = [PollFd::new(ctx.signals.wake_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(1000u16));
                ctx.signals.drain();
            }
            return;
        }
        if path == b"/sleep" {
            let ms = query_param(&target, b"ms").unwrap_or(0);
            if !ctx.signals.sleep_unless_quick(Duration::from_millis(ms)) {
                return;
            }
        }
        let content_length = BODY.len().to_string();
        let fields: [(&[u8], &[u8]); 2] =
            [(b"Content-Type", b"text/plain"), (b"Content-Length", content_length.as_bytes())];
        let head =
            ResponseHead::from_app(b"200 OK", fields.into_iter()).expect("a valid fixed response");
        // One request per connection: the server closes after the response.
        conn.close_after_response();
        let date = date_now();
        if conn.send_response(&head, b"ferrocorn", &date, &mut out).is_ok() {
            let _ = conn.write_data(BODY, &mut out);
            out.extend_from_slice(conn.end_response().map_or(&b""[..], |f| f.last));
        }
        let _ = transport::write_all(&mut stream, &mut [IoSlice::new(&out)], waits);
        ctx.heartbeat.end_request();
        transport::close_graceful(stream, false, ctx.heartbeat, ctx.beat_interval());
    }
}

fn query_param(target: &[u8], name: &[u8]) -> Option<u64> {
    let q = target.splitn(2, |&b| b == b'?').nth(1)?;
    q.split(|&b| b == b'&').find_map(|kv| {
        let mut it = kv.splitn(2, |&b| b == b'=');
        (it.next()? == name).then(|| std::str::from_utf8(it.next()?).ok()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_params() {
        assert_eq!(super::query_param(b"/sleep?ms=150", b"ms"), Some(150));
        assert_eq!(super::query_param(b"/sleep?a=1&ms=7", b"ms"), Some(7));
        assert_eq!(super::query_param(b"/sleep", b"ms"), None);
    }
}
