//! Comparing an [`Outcome`] with a case's [`Expectation`].
//!
//! The outcome is summed up as a [`Verdict`]: `accept` (every request read whole, clean
//! close), an error class, or broken (the core stalled, looped, misused its own API, or
//! closed in the middle of a request). A case **agrees** when the verdict is the expected
//! error class, or when it accepts and every request is equal to the expected one
//! (method, raw target, version, upper-cased header names and values in order, body,
//! trailers). A difference of verdict is what the ledger can excuse; a different request
//! content or a broken outcome never is (those are parser bugs, not policy).

use std::fmt;

use crate::case::{Expectation, ExpectedRequest};
use crate::replay::{End, Outcome, Request};

/// What the core did with a case, in one word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every request was read whole and the connection closed cleanly.
    Accept,
    /// The connection failed with this gunicorn class.
    Error(&'static str),
    /// The core misbehaved (what happened).
    Broken(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Error(class) => f.write_str(class),
            Verdict::Broken(what) => write!(f, "broken ({what})"),
        }
    }
}

/// The verdict of an outcome.
pub fn verdict(o: &Outcome) -> Verdict {
    match &o.end {
        End::Closed | End::NotPersistent if o.requests.iter().all(|r| r.complete) => {
            Verdict::Accept
        }
        End::Closed | End::NotPersistent => {
            Verdict::Broken(String::from("closed in the middle of a request"))
        }
        End::Error { class, .. } => Verdict::Error(class),
        End::Stalled => Verdict::Broken(String::from("NeedData after EOF")),
        End::Usage(what) => Verdict::Broken(what.clone()),
        End::Runaway => Verdict::Broken(String::from("events without progress")),
    }
}

/// How an outcome compares with its expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Same verdict, same requests.
    Agree,
    /// A different verdict (accept where an error was expected, an error where requests
    /// were expected, or another error class): what the ledger may list.
    Differs(Verdict),
    /// Accepted as expected, but the requests differ. Never excusable.
    ContentDiffers,
    /// The core misbehaved. Never excusable.
    Broken(String),
}

/// Compares an outcome with what its case expects.
pub fn compare(expect: &Expectation, outcome: &Outcome) -> Comparison {
    let v = verdict(outcome);
    match (expect, v) {
        (_, Verdict::Broken(what)) => Comparison::Broken(what),
        (Expectation::Error(want), Verdict::Error(got)) if want == got => Comparison::Agree,
        (Expectation::Requests(want), Verdict::Accept) => {
            if want.len() == outcome.requests.len()
                && want.iter().zip(&outcome.requests).all(|(w, g)| same(w, g))
            {
                Comparison::Agree
            } else {
                Comparison::ContentDiffers
            }
        }
        (_, v) => Comparison::Differs(v),
    }
}

fn same_fields(want: &[(Vec<u8>, Vec<u8>)], got: &[(Vec<u8>, Vec<u8>)]) -> bool {
    want.len() == got.len()
        && want
            .iter()
            .zip(got)
            .all(|((wn, wv), (gn, gv))| wn == &gn.to_ascii_uppercase() && wv == gv)
}

fn same(want: &ExpectedRequest, got: &Request) -> bool {
    want.method == got.method
        && want.uri == got.target
        && want.version == got.version
        && same_fields(&want.headers, &got.headers)
        && want.body == got.body
        && same_fields(&want.trailers, &got.trailers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &[u8]) -> Request {
        Request {
            method: b"GET".to_vec(),
            target: b"/".to_vec(),
            version: (1, 1),
            headers: vec![(name.to_vec(), b"a".to_vec())],
            body: Vec::new(),
            trailers: Vec::new(),
            complete: true,
            framing: String::from("Empty"),
            keep_alive: true,
            expect_continue: false,
            proxy: None,
        }
    }

    fn expected() -> Expectation {
        Expectation::Requests(vec![ExpectedRequest {
            method: b"GET".to_vec(),
            uri: b"/".to_vec(),
            version: (1, 1),
            headers: vec![(b"HOST".to_vec(), b"a".to_vec())],
            body: Vec::new(),
            trailers: Vec::new(),
        }])
    }

    fn error(class: &'static str) -> Outcome {
        Outcome {
            requests: Vec::new(),
            end: End::Error { class, status: 400, message: String::new() },
        }
    }

    #[test]
    fn agreement_and_differences() {
        let ok = Outcome { requests: vec![request(b"host")], end: End::Closed };
        assert_eq!(compare(&expected(), &ok), Comparison::Agree);
        let other = Outcome { requests: vec![request(b"Hast")], end: End::Closed };
        assert_eq!(compare(&expected(), &other), Comparison::ContentDiffers);
        assert_eq!(
            compare(&expected(), &error("InvalidHeader")),
            Comparison::Differs(Verdict::Error("InvalidHeader"))
        );
        let want_err = Expectation::Error(String::from("InvalidHeader"));
        assert_eq!(compare(&want_err, &error("InvalidHeader")), Comparison::Agree);
        assert_eq!(
            compare(&want_err, &error("NoMoreData")),
            Comparison::Differs(Verdict::Error("NoMoreData"))
        );
        assert_eq!(compare(&want_err, &ok), Comparison::Differs(Verdict::Accept));
        let stalled = Outcome { requests: Vec::new(), end: End::Stalled };
        assert!(matches!(compare(&want_err, &stalled), Comparison::Broken(_)));
        let mut cut = request(b"Host");
        cut.complete = false;
        let cut = Outcome { requests: vec![cut], end: End::Closed };
        assert!(matches!(compare(&expected(), &cut), Comparison::Broken(_)));
    }
}
