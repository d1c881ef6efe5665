//! The WSGI request pipeline: what happens to one request between its head and the end of
//! its response, the same for both workers. A worker's connection driver (the sync
//! worker's [`super::blocking::BlockingExchange`], the gthread worker's request around the
//! engine's exchange) implements [`Driver`]; [`Pipeline::serve`] does the rest:
//!
//! ```text
//!   pre_request(worker, req)             the hook's exception is the application's
//!   count the request (max_requests)
//!   environ dict (template copy)         an environ the core refused: its error page
//!   app(environ, start_response)
//!   the result: sendfile(2) for a wsgi.file_wrapper with a real file,
//!               a list or tuple written with the head, any other iterable chunk by chunk
//!   result.close()
//!   an exception: the client's fault in one line, a body error's page, the 500 page
//!   statsd, the access log, post_request(worker, req, environ, resp)
//! ```
//!
//! The two workers differ only where their I/O model forces it, inside their drivers: how
//! a list result is written (the sync worker in one `writev` at once; the gthread worker
//! into the connection's buffer, written when the handler returns), how `Expect:
//! 100-continue` and the body are read, and the quick stop (INT, QUIT), which only the
//! sync worker's blocking calls see.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferrocorn_core::environ::{Environ, EnvironError};
use ferrocorn_core::response::ResponseHead;
use ferrocorn_core::{Peer, RecvError, RequestHead};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::convert::format_traceback;
use super::hooks::{Hooks, RequestObj, WorkerObj};
use super::pyio::stop_error;
use super::request::{self, ClientFault, FileSource, Served, peer_ip, request_obj, response_obj};
use super::wsgi::{
    EarlyHints, EnvironBuilder, FileWrapper, Input, InputSource, ResponseSink, StartResponse,
    bytes_of,
};
use crate::log::Logger;
use crate::log::access::AccessLog;
use crate::tls_peer::ClientVars;

/// What an answer to an exception depends on.
#[derive(Debug, Default)]
pub struct Failure {
    /// The response head went out.
    pub started: bool,
    /// The connection is unusable (the client went away, or stopped reading).
    pub broken: bool,
    /// Why the client failed the request, if it did.
    pub fault: Option<ClientFault>,
    /// The core's verdict on a request body that broke its framing.
    pub body_error: Option<RecvError>,
}

/// The response as it was sent, for the access log and `post_request`.
#[derive(Debug)]
pub struct Sent<'a> {
    /// The request head.
    pub request: Option<&'a RequestHead>,
    /// The head from `start_response`, if any.
    pub head: Option<&'a ResponseHead>,
    /// Body bytes sent.
    pub bytes: u64,
}

/// A worker's connection for one request, as the pipeline drives it. Implemented by the
/// handle that `wsgi.input` and `start_response` share (an `Arc<Mutex<_>>`), so
/// [`ResponseSink::write`] is PEP 3333's `write` and a streamed chunk.
pub trait Driver: ResponseSink + InputSource + Clone + 'static {
    /// Writes a list or tuple result (all there at once) and ends the response; an
    /// error when `start_response` was not called.
    fn write_all(&self, py: Python<'_>, chunks: &[&[u8]]) -> PyResult<()>;
    /// Ends the response (the head if it was never sent, the last chunk); an error when
    /// `start_response` was not called.
    fn finish(&self, py: Python<'_>) -> PyResult<()>;
    /// Sends the body from a regular file with sendfile(2), after the head: `count`
    /// bytes (what the framing allows) from `src.offset`, and ends the response.
    fn send_file(&self, py: Python<'_>, src: &FileSource<'_>) -> PyResult<()>;
    /// What an answer to an exception depends on.
    fn failure(&self, py: Python<'_>) -> Failure;
    /// Sends an error page when nothing was sent yet.
    fn send_page(&self, py: Python<'_>, page: &[u8]);
    /// An exception after the head went out: the connection cannot carry another
    /// response.
    fn abandon(&self, py: Python<'_>);
    /// The quick stop (INT, QUIT) was asked for: a streamed result ends.
    fn stopping(&self, py: Python<'_>) -> bool;
    /// Calls `f` with the response as it was sent.
    fn with_sent<R>(&self, py: Python<'_>, f: impl FnOnce(Sent<'_>) -> R) -> R;
}

/// What a request brings to the pipeline, taken from its head before the pipeline runs
/// (the head stays with the driver).
#[derive(Debug)]
pub struct Request {
    /// The client.
    pub peer: Peer,
    /// `METHOD URI` (for `Error handling request METHOD URI`).
    pub method_uri: String,
    /// The `req` of hooks, when there are hooks.
    pub req: Option<Py<RequestObj>>,
    /// The environ as data, or why the core refused it.
    pub environ: Result<Environ, EnvironError>,
    /// When the request began (its duration in the access log).
    pub start: Instant,
    /// The client certificate's environ variables (TLS with `cert_reqs` 1 or 2).
    pub client_cert: Option<Arc<ClientVars>>,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response was sent (the application's, or a page in its place).
    Answered,
    /// The application failed after its response started, or no answer could go: the
    /// connection must close.
    Failed,
}

/// The pipeline of one worker process: the application and what serves it.
#[derive(Debug)]
pub struct Pipeline {
    /// The WSGI application.
    pub app: Py<PyAny>,
    /// Environ dicts from the template (one at a time).
    pub builder: Mutex<EnvironBuilder>,
    /// `pre_request` and `post_request`.
    pub hooks: Hooks,
    /// The process's `worker` object (the one the server hooks got).
    pub obj: Py<WorkerObj>,
    /// The access log, when `accesslog` is set (a line at a time).
    pub access: Option<Mutex<AccessLog>>,
    /// The error log.
    pub log: Logger,
    /// This worker's pid.
    pub pid: u32,
    /// `sendfile` (and not disabled by the environment).
    pub sendfile: bool,
    /// `timeout`: the client's deadline, named in what is said of a client that stalled.
    pub timeout: Duration,
    /// The gthread worker (gunicorn's words for a broken pipe differ by worker).
    pub gthread: bool,
    /// `max_requests` as the pipeline applies it (0: the worker applies it itself).
    pub max_requests: u64,
}

impl Pipeline {
    /// The `req` and `METHOD URI` of a request head, and gunicorn's default `pre_request`
    /// debug line: what the pipeline needs of the head before the driver keeps it.
    pub fn request(
        &self,
        py: Python<'_>,
        head: &RequestHead,
        peer: Peer,
        environ: Result<Environ, EnvironError>,
        start: Instant,
    ) -> Request {
        request::log_request(&self.log, &self.hooks, head);
        let req = if self.hooks.any() { request_obj(py, head, &peer).ok() } else { None };
        let method_uri = request::method_uri(head);
        Request { peer, method_uri, req, environ, start, client_cert: None }
    }

    /// Serves one request through `driver`.
    pub fn serve<D: Driver>(&self, py: Python<'_>, driver: &D, request: Request) -> Outcome {
        let Request { peer, method_uri, req, environ, start, client_cert } = request;
        // gunicorn's order: pre_request, the environ, then the request is counted.
        let pre = request::pre_request(py, &self.hooks, &self.obj, req.as_ref());
        let nr = self.obj.get().count_request();
        if self.max_requests > 0 && nr >= self.max_requests {
            self.log.info("Autorestarting worker after current request.");
            self.obj.get().stop();
        }
        let mut replaced: Option<u16> = None;
        let mut environ_dict: Option<Bound<'_, PyDict>> = None;
        let mut environ_data: Option<Environ> = None;
        let result = match (pre, environ) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => {
                let page = request::environ_refused(&self.log, &peer, &e);
                driver.send_page(py, &page);
                replaced = Some(e.status());
                Ok(())
            }
            (Ok(()), Ok(env)) => {
                let cert = client_cert.as_deref();
                let called = self.call_app(py, driver, &env, cert, &mut environ_dict);
                environ_data = Some(env);
                called
            }
        };
        if let Err(err) = &result {
            replaced = self.app_error(py, driver, err, &method_uri, &peer);
        }
        self.access(py, driver, &peer, replaced, environ_data.as_ref(), start.elapsed());
        request::post_request(
            py,
            &self.hooks,
            &self.log,
            &self.obj,
            req.as_ref(),
            environ_dict.as_ref(),
            || driver.with_sent(py, |s| response_obj(py, s.head, s.bytes)),
        );
        if result.is_err() && replaced.is_none() { Outcome::Failed } else { Outcome::Answered }
    }

    /// Builds the environ dict, calls the application and writes its response.
    fn call_app<'py, D: Driver>(
        &self,
        py: Python<'py>,
        driver: &D,
        env: &Environ,
        client_cert: Option<&ClientVars>,
        keep: &mut Option<Bound<'py, PyDict>>,
    ) -> PyResult<()> {
        let input = Bound::new(py, Input::new(driver.clone()))?.into_any();
        let environ = self
            .builder
            .lock_py_attached(py)
            .unwrap_or_else(PoisonError::into_inner)
            .build(py, env, input)?;
        for (name, value) in client_cert.map_or(&[][..], |c| &c.vars) {
            environ.set_item(name, value)?;
        }
        EarlyHints::install(&environ, driver.clone())?;
        *keep = Some(environ.clone());
        let sr = Bound::new(py, StartResponse::new(driver.clone()))?;
        let result = self.app.bind(py).call1((environ, sr))?;
        let written = self.write_result(py, driver, &result);
        written.and(request::close_result(py, &result))
    }

    fn write_result<D: Driver>(
        &self,
        py: Python<'_>,
        driver: &D,
        result: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if self.sendfile {
            if let Ok(w) = result.cast::<FileWrapper>() {
                if let Some(src) = request::file_source(py, w.get())? {
                    return driver.send_file(py, &src);
                }
            }
        }
        // A list or tuple is all there: its items go out together, with the head.
        if result.is_instance_of::<PyList>() || result.is_instance_of::<PyTuple>() {
            let items: Vec<Bound<'_, PyAny>> = result.try_iter()?.collect::<PyResult<_>>()?;
            let mut chunks: Vec<&[u8]> = Vec::with_capacity(items.len());
            for item in &items {
                chunks.push(bytes_of(item)?);
            }
            return driver.write_all(py, &chunks);
        }
        // Any other iterable streams: each chunk is written before the next is asked for
        // (a generator may take its time to produce it), and a client gone fails the
        // write, which ends the response (the caller then closes the iterable).
        for item in result.try_iter()? {
            let item = item?;
            if driver.stopping(py) {
                // A generator that caught the quick stop's `SystemExit` (or never waited
                // where Python could raise it) ends here.
                return Err(stop_error());
            }
            driver.write(py, bytes_of(&item)?)?;
        }
        driver.finish(py)
    }

    /// Answers an exception of the application (or a hook); returns the status sent in
    /// place of the application's, if any.
    fn app_error<D: Driver>(
        &self,
        py: Python<'_>,
        driver: &D,
        err: &PyErr,
        method_uri: &str,
        peer: &Peer,
    ) -> Option<u16> {
        let f = driver.failure(py);
        // The client's doing, let through by the application (its `OSError`): one line,
        // no traceback; an answer if one can still go.
        if let Some(fault) = f.fault.filter(|_| err.is_instance_of::<PyOSError>(py)) {
            fault.log(&self.log, self.gthread, peer, method_uri, self.timeout);
            let (status, page) = fault.page(self.timeout).filter(|_| !f.started && !f.broken)?;
            driver.send_page(py, &page);
            return Some(status);
        }
        if f.broken {
            self.log.debug("Ignoring connection closed by the client");
            return None;
        }
        if let Some(e) = f.body_error {
            self.log.warning(format_args!("Invalid request from ip={}: {e}", peer_ip(peer)));
            if f.started {
                return None;
            }
            let mut page = Vec::new();
            ferrocorn_core::response::error_response(&e, &mut page);
            driver.send_page(py, &page);
            return Some(e.status());
        }
        let tb = format_traceback(py, err);
        if f.started {
            self.log.exception(format_args!("Error handling request\n{}", tb.trim_end()));
            driver.abandon(py);
            return None;
        }
        self.log.exception(format_args!("Error handling request {method_uri}\n{}", tb.trim_end()));
        let mut page = Vec::new();
        ferrocorn_core::response::internal_error_page(&mut page);
        driver.send_page(py, &page);
        Some(500)
    }

    /// The request's statsd metrics and access-log line.
    fn access<D: Driver>(
        &self,
        py: Python<'_>,
        driver: &D,
        peer: &Peer,
        replaced: Option<u16>,
        environ: Option<&Environ>,
        elapsed: Duration,
    ) {
        let statsd = self.log.statsd();
        if statsd.is_none() && self.access.is_none() {
            return;
        }
        driver.with_sent(py, |s| {
            let Some(head) = s.request else { return };
            let status = replaced.or_else(|| s.head.map(ResponseHead::code)).unwrap_or(500);
            if let Some(statsd) = statsd {
                statsd.request(status, elapsed);
            }
            let Some(access) = &self.access else { return };
            let access = access.lock().unwrap_or_else(PoisonError::into_inner);
            let served = Served {
                head,
                peer,
                status,
                sent: if replaced.is_some() { 0 } else { s.bytes },
                response: s.head.filter(|_| replaced.is_none()),
                environ,
                elapsed,
                pid: self.pid,
            };
            // With Python logging configured, gunicorn's logger object takes the record.
            match access.forward() {
                Some(f) => super::pylog::access(py, f, &served),
                None => request::write_access(&access, &served),
            }
        });
    }

    /// USR1: the access log reopened.
    pub fn reopen_access(&self) {
        if let Some(access) = &self.access {
            if let Err(e) = access.lock().unwrap_or_else(PoisonError::into_inner).reopen() {
                self.log.error(e);
            }
        }
    }
}
