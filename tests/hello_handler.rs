//! A Rust [`Handler`] for the gthread engine: `Hello, World!`, for the tests and to
//! measure the engine without Python.
//!
//! Paths: `/sleep?ms=N` answers after N ms (blocking the thread, like a slow
//! application); `/gil?us=N` spins N µs holding a process-wide lock (a stand-in for
//! Python code under the GIL, to measure thread scheduling); `/big?kb=N` answers N KiB in one write (for slow readers); `/chunks?n=N`
//! answers N small chunks without `Content-Length` (chunked); any request with a body is
//! answered with the body (an echo). Every answer carries `X-Request: <n>`, the
//! request's position on its connection, from 0, and `X-Proxy-Source`, the client
//! address of the connection's PROXY header (empty without one). A request with
//! `X-Hold: PATH` creates `PATH.started` when the handler starts, then holds its thread
//! until `PATH.release` exists (at most 60 s): tests synchronise on it instead of sleeping.

use std::io::Read;
use std::time::Duration;

use ferrocorn_core::response::ResponseHead;

use ferrocorn::worker::gthread::{Exchange, Failed, Handler};

const BODY: &[u8] = b"Hello, World!";

/// Creates `{path}.started`, then waits until `{path}.release` exists (at most 60 s).
fn hold_until_released(path: &str) {
    let _ = std::fs::write(format!("{path}.started"), b"");
    let release = std::path::PathBuf::from(format!("{path}.release"));
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while !release.exists() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `Hello, World!` handler.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HelloHandler;

fn query_param(target: &[u8], name: &[u8]) -> Option<u64> {
    let q = target.splitn(2, |&b| b == b'?').nth(1)?;
    q.split(|&b| b == b'&').find_map(|kv| {
        let mut it = kv.splitn(2, |&b| b == b'=');
        (it.next()? == name).then(|| std::str::from_utf8(it.next()?).ok()?.parse().ok())?
    })
}

impl Handler for HelloHandler {
    fn handle(&self, ex: &mut Exchange) -> Result<(), Failed> {
        let head = ex.head().ok_or(Failed)?;
        let target = head.target().to_vec();
        let path = head.path().to_vec();
        let has_body = head.body != ferrocorn_core::BodyKind::Empty;
        let nth = ex.nth().to_string();
        let proxy =
            head.proxy.as_ref().and_then(|p| p.source).map(|a| a.to_string()).unwrap_or_default();
        if let Some(hold) = head.header(b"x-hold") {
            hold_until_released(&String::from_utf8_lossy(hold));
        }
        let mut body = Vec::new();
        if has_body {
            ex.read_to_end(&mut body).map_err(|_| Failed)?;
        } else {
            body.extend_from_slice(BODY);
        }
        if path == b"/gil" {
            // A stand-in for a Python application: N µs of work under one lock per
            // process, as the GIL serialises Python code.
            static GIL: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let us = query_param(&target, b"us").unwrap_or(5);
            let _g = GIL.lock();
            let end = std::time::Instant::now() + Duration::from_micros(us);
            while std::time::Instant::now() < end {
                std::hint::spin_loop();
            }
        }
        if path == b"/sleep" {
            std::thread::sleep(Duration::from_millis(query_param(&target, b"ms").unwrap_or(0)));
        }
        if path == b"/chunks" {
            let n = query_param(&target, b"n").unwrap_or(3);
            let fields: [(&[u8], &[u8]); 2] =
                [(b"Content-Type", b"text/plain"), (b"X-Request", nth.as_bytes())];
            let head = ResponseHead::from_app(b"200 OK", fields.into_iter()).map_err(|_| Failed)?;
            ex.start(&head).map_err(|_| Failed)?;
            for i in 0..n {
                ex.write(format!("chunk {i}\n").as_bytes()).map_err(|_| Failed)?;
            }
            return Ok(());
        }
        if path == b"/big" {
            body = vec![b'x'; query_param(&target, b"kb").unwrap_or(1024) as usize * 1024];
        }
        let len = body.len().to_string();
        let fields: [(&[u8], &[u8]); 4] = [
            (b"Content-Type", b"text/plain"),
            (b"Content-Length", len.as_bytes()),
            (b"X-Request", nth.as_bytes()),
            (b"X-Proxy-Source", proxy.as_bytes()),
        ];
        let head = ResponseHead::from_app(b"200 OK", fields.into_iter()).map_err(|_| Failed)?;
        ex.start(&head).map_err(|_| Failed)?;
        ex.write(&body).map_err(|_| Failed)?;
        Ok(())
    }
}
