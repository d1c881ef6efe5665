//! The ledger of known divergences (`conformance/divergences.toml`).
//!
//! ```toml
//! [[divergence]]
//! case = "gunicorn/valid/025"
//! ours = "UnsupportedTransferCoding"
//! reason = "gzip is not decoded by the core; RFC 9112 §6.1 ..."
//! ```
//!
//! One entry per case. `ours` is what ferrocorn does instead of what the case expects:
//! `accept`, or the gunicorn class of the error it raises. `reason` says why that is
//! deliberate and must cite the section of the RFC (or other specification, such as the
//! PROXY protocol's) that makes it so: it has to contain `§`. Only verdict
//! differences can be listed (see [`crate::check`]); a case whose requests differ in
//! content, whose outcome depends on the split, or where the core misbehaves cannot be.
//!
//! The runner checks the ledger against reality both ways: an unlisted difference, a
//! listed case whose `ours` is not what the core now does, a listed case that now agrees
//! with its expectation, and an entry naming a case that does not exist all fail the run.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Deserialize;

/// Every class name `RecvError::gunicorn_class` can return.
pub const KNOWN_CLASSES: &[&str] = &[
    "InvalidRequestLine",
    "InvalidRequestMethod",
    "InvalidHTTPVersion",
    "InvalidHeader",
    "InvalidHeaderName",
    "ObsoleteFolding",
    "LimitRequestLine",
    "LimitRequestHeaders",
    "UnsupportedTransferCoding",
    "ExpectationFailed",
    "InvalidSchemeHeaders",
    "InvalidChunkSize",
    "InvalidChunkExtension",
    "ChunkMissingTerminator",
    "NoMoreData",
    "InvalidProxyLine",
    "InvalidProxyHeader",
    "ForbiddenProxyRequest",
];

/// One known divergence.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The case name (`gunicorn/valid/025`).
    pub case: String,
    /// `accept` or an error class.
    pub ours: String,
    /// Why, citing the section (`§`) of the RFC that makes it right.
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLedger {
    #[serde(default)]
    divergence: Vec<Entry>,
}

/// The ledger, by case name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Entries by case name.
    pub entries: BTreeMap<String, Entry>,
}

impl Ledger {
    /// Parses and validates ledger text; every problem is reported, not just the first.
    pub fn parse(text: &str) -> Result<Ledger, Vec<String>> {
        let raw: RawLedger = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut errors = Vec::new();
        let mut entries = BTreeMap::new();
        for entry in raw.divergence {
            let case = entry.case.clone();
            if !case.contains('/') {
                errors.push(format!("{case:?}: a case is named LABEL/.../NAME"));
            }
            if entry.ours != "accept" && !KNOWN_CLASSES.contains(&entry.ours.as_str()) {
                errors.push(format!(
                    "{case}: ours = {:?} is neither \"accept\" nor a known error class",
                    entry.ours
                ));
            }
            if !entry.reason.contains('§') {
                errors.push(format!("{case}: the reason must cite the section (§) of the RFC that makes this deliberate"));
            }
            if entries.insert(case.clone(), entry).is_some() {
                errors.push(format!("{case}: listed twice"));
            }
        }
        if errors.is_empty() { Ok(Ledger { entries }) } else { Err(errors) }
    }

    /// Loads a ledger file; a missing file is an empty ledger.
    pub fn load(path: &Path) -> Result<Ledger, Vec<String>> {
        match fs::read_to_string(path) {
            Ok(text) => Ledger::parse(&text).map_err(|errs| {
                errs.into_iter().map(|e| format!("{}: {e}", path.display())).collect()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger::default()),
            Err(e) => Err(vec![format!("{}: {e}", path.display())]),
        }
    }

    /// The entry for a case.
    pub fn get(&self, case: &str) -> Option<&Entry> {
        self.entries.get(case)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let ok = Ledger::parse(
            r#"
            [[divergence]]
            case = "gunicorn/valid/025"
            ours = "UnsupportedTransferCoding"
            reason = "RFC 9112 §6.1"
            "#,
        )
        .unwrap();
        assert_eq!(ok.get("gunicorn/valid/025").unwrap().ours, "UnsupportedTransferCoding");
        assert_eq!(Ledger::parse("").unwrap(), Ledger::default());

        let errs = Ledger::parse(
            r#"
            [[divergence]]
            case = "gunicorn/valid/025"
            ours = "Nope"
            reason = "RFC 9112, because"
            [[divergence]]
            case = "gunicorn/valid/025"
            ours = "accept"
            reason = "RFC 9110 §5"
            "#,
        )
        .unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(Ledger::parse("[[divergence]]\ncase = \"a/b\"\nours = \"accept\"\nreason = \"RFC 1 §1\"\nwhy = 1\n").is_err());
    }
}
