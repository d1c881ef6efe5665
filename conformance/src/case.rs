//! Cases: `NAME.http` (raw request bytes) + `NAME.json` (settings and expectation).
//!
//! The JSON format (see `shared/corpus/gunicorn-requests/README.md`):
//!
//! ```json
//! { "settings": { "permit_obsolete_folding": true },
//!   "requests": [ { "method": "GET", "uri": "/", "version": [1, 1],
//!                   "headers": [["HOST", "example.com"]], "body": "",
//!                   "trailers": [["X-SUM", "1"]] } ] }
//! ```
//!
//! or `{ "settings": {}, "error": "InvalidHeader" }`. Every string is the bytes read as
//! latin-1 (one char per byte, U+0000..=U+00FF), so binary bytes round-trip; a char above
//! U+00FF is a load error. Header names in expectations are upper-cased, as gunicorn
//! reports them. `trailers` may be absent, which means "none".

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Field lines as `(name, value)` byte pairs.
pub type FieldList = Vec<(Vec<u8>, Vec<u8>)>;

/// One case.
#[derive(Clone, Debug)]
pub struct Case {
    /// `LABEL/SUBDIR/STEM`, e.g. `gunicorn/valid/025`: the name the ledger and the
    /// snapshots use.
    pub name: String,
    /// The `.http` file.
    pub path: PathBuf,
    /// The request bytes.
    pub bytes: Vec<u8>,
    /// The gunicorn settings the case runs under, as written.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// What must come out.
    pub expect: Expectation,
}

/// What a case expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expectation {
    /// The connection yields exactly these requests, then closes cleanly at EOF.
    Requests(Vec<ExpectedRequest>),
    /// The parser rejects the input with this gunicorn exception class (requests before
    /// it, on the same connection, may have been accepted).
    Error(String),
}

/// One expected request, every string already turned back into bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedRequest {
    /// The method.
    pub method: Vec<u8>,
    /// The raw request-target.
    pub uri: Vec<u8>,
    /// `(major, minor)`.
    pub version: (u8, u8),
    /// `(UPPER-CASED NAME, value)`, after the header policy (dropped fields absent).
    pub headers: FieldList,
    /// The decoded body.
    pub body: Vec<u8>,
    /// The trailer fields (`(UPPER-CASED NAME, value)`), empty when the JSON has none.
    pub trailers: FieldList,
}

/// Why a case could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The file at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    #[serde(default)]
    settings: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    requests: Option<Vec<RawRequest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    method: String,
    uri: String,
    version: (u8, u8),
    headers: Vec<(String, String)>,
    body: String,
    #[serde(default)]
    trailers: Vec<(String, String)>,
}

/// Turns a latin-1 decoded string back into its bytes.
pub fn latin1_bytes(s: &str) -> Result<Vec<u8>, String> {
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c))
                .map_err(|_| format!("{c:?} (U+{:04X}) is not latin-1", u32::from(c)))
        })
        .collect()
}

fn pairs(list: &[(String, String)]) -> Result<FieldList, String> {
    list.iter().map(|(n, v)| Ok((latin1_bytes(n)?, latin1_bytes(v)?))).collect()
}

/// Parses the text of a `.json` file into settings and an expectation.
pub fn parse_spec(
    text: &str,
) -> Result<(serde_json::Map<String, serde_json::Value>, Expectation), String> {
    let raw: RawCase = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let expect = match (raw.error, raw.requests) {
        (Some(class), None) => {
            if class.is_empty() || !class.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("{class:?} is not an exception class name"));
            }
            Expectation::Error(class)
        }
        (None, Some(requests)) => Expectation::Requests(
            requests
                .iter()
                .map(|r| {
                    Ok(ExpectedRequest {
                        method: latin1_bytes(&r.method)?,
                        uri: latin1_bytes(&r.uri)?,
                        version: r.version,
                        headers: pairs(&r.headers)?,
                        body: latin1_bytes(&r.body)?,
                        trailers: pairs(&r.trailers)?,
                    })
                })
                .collect::<Result<_, String>>()?,
        ),
        (Some(_), Some(_)) => return Err(String::from("has both \"error\" and \"requests\"")),
        (None, None) => return Err(String::from("has neither \"error\" nor \"requests\"")),
    };
    Ok((raw.settings, expect))
}

/// Loads one case from its `.http` path; `name` is what the case is called.
pub fn load_case(name: String, http: &Path) -> Result<Case, LoadError> {
    let json = http.with_extension("json");
    let err = |path: &Path, message: String| LoadError { path: path.to_path_buf(), message };
    let bytes = fs::read(http).map_err(|e| err(http, e.to_string()))?;
    let text = fs::read_to_string(&json).map_err(|e| err(&json, e.to_string()))?;
    let (settings, expect) = parse_spec(&text).map_err(|m| err(&json, m))?;
    Ok(Case { name, path: http.to_path_buf(), bytes, settings, expect })
}

/// Loads every case under `dir` (recursively), naming each `LABEL/relative/path/STEM`.
///
/// A `.http` without its `.json` (or the reverse) is an error, so a half-added case never
/// goes unnoticed. Other files (READMEs) are ignored. Cases come back sorted by name.
pub fn load_dir(label: &str, dir: &Path) -> Result<Vec<Case>, Vec<LoadError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    walk(dir, &mut files, &mut errors);
    if files.is_empty() && errors.is_empty() {
        errors.push(LoadError { path: dir.to_path_buf(), message: String::from("no cases found") });
    }
    let mut cases = Vec::new();
    for path in &files {
        let ext = path.extension().and_then(|e| e.to_str());
        let partner = match ext {
            Some("http") => path.with_extension("json"),
            Some("json") => path.with_extension("http"),
            _ => continue,
        };
        if !partner.is_file() {
            errors.push(LoadError {
                path: path.clone(),
                message: format!("{} is missing", partner.display()),
            });
            continue;
        }
        if ext != Some("http") {
            continue;
        }
        let rel = path.strip_prefix(dir).unwrap_or(path).with_extension("");
        let rel: Vec<String> =
            rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let name = format!("{label}/{}", rel.join("/"));
        match load_case(name, path) {
            Ok(case) => cases.push(case),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        cases.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(cases)
    } else {
        Err(errors)
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<LoadError>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(LoadError { path: dir.to_path_buf(), message: e.to_string() });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files, errors);
        } else {
            files.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_round_trip() {
        let all: String = (0u8..=255).map(char::from).collect();
        assert_eq!(latin1_bytes(&all).unwrap(), (0u8..=255).collect::<Vec<_>>());
        assert!(latin1_bytes("ĀB").is_err());
    }

    #[test]
    fn parse_requests_and_error() {
        let (settings, expect) = parse_spec(
            r#"{"settings": {"permit_obsolete_folding": true}, "requests": [{"method": "GET",
                "uri": "/", "version": [1, 1], "headers": [["HOST", "\u00e9"]], "body": "\u0000"}]}"#,
        )
        .unwrap();
        assert_eq!(settings.len(), 1);
        let Expectation::Requests(reqs) = expect else { panic!() };
        assert_eq!(reqs[0].headers, vec![(b"HOST".to_vec(), vec![0xE9])]);
        assert_eq!(reqs[0].body, vec![0]);
        assert!(reqs[0].trailers.is_empty());
        let (_, expect) = parse_spec(r#"{"settings": {}, "error": "InvalidHeader"}"#).unwrap();
        assert_eq!(expect, Expectation::Error(String::from("InvalidHeader")));
        assert!(parse_spec(r#"{"settings": {}}"#).is_err());
        assert!(parse_spec(r#"{"settings": {}, "error": "X", "requests": []}"#).is_err());
        assert!(parse_spec(r#"{"settings": {}, "eror": "X"}"#).is_err());
    }
}
