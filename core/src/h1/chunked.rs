//! The chunked transfer coding (RFC 9112 §7.1): chunk-size lines with their extensions,
//! chunk data and its CRLF, the last chunk, and the trailer section.

use alloc::vec::Vec;

use super::chars::{is_ows, is_token};
use super::head::{FieldParser, LineEnd, Section, line_end};
use super::{Trailers, Version};
use crate::config::ProtoConfig;
use crate::error::{Detail, HeadLimit, RecvError};

/// Extension bytes a body may carry before they must stay below its data bytes (a
/// guard against bodies made of extensions, like Go's fix for CVE-2023-39326).
const EXTENSION_ALLOWANCE: u64 = 64 * 1024;

/// Where the decoder is in the chunked body.
#[derive(Debug)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailers { line_start: usize, fields: FieldParser },
}

/// One step of decoding, over the unread bytes of the connection.
#[derive(Debug)]
pub(crate) enum Step {
    /// The first `n` bytes were framing: drop them and go on.
    Skip(usize),
    /// The first `n` bytes are body data.
    Data(usize),
    NeedData,
    /// The body ended after the first `n` bytes.
    End(usize, Trailers),
}

/// The chunked-body decoder.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
    searched: usize,
    data_bytes: u64,
    extension_bytes: u64,
}

impl ChunkedDecoder {
    pub(crate) fn new() -> Self {
        ChunkedDecoder { state: State::Size, searched: 0, data_bytes: 0, extension_bytes: 0 }
    }

    /// The error for a peer that closed the connection now (RFC 9112 §8): as gunicorn,
    /// `NoMoreData` inside a chunk-size line or chunk data, a missing terminator after
    /// chunk data or in the trailer section.
    pub(crate) fn eof_error(&self) -> RecvError {
        match self.state {
            State::Size | State::Data(_) => RecvError::NoMoreData,
            State::DataEnd | State::Trailers { .. } => {
                RecvError::ChunkMissingTerminator(Detail::new(b""))
            }
        }
    }

    /// Decodes from `buf`, the connection's unread bytes.
    pub(crate) fn step(&mut self, buf: &[u8], cfg: &ProtoConfig) -> Result<Step, RecvError> {
        match &mut self.state {
            State::Size => {
                // gunicorn 27 refuses a chunk line once more than `limit_request_field_size`
                // bytes are buffered without its CRLF: the longest accepted line holds
                // `limit - 1` bytes before the CRLF.
                let max = cfg.limits.field_size.saturating_sub(1);
                let end = match line_end(buf, 0, &mut self.searched, max) {
                    LineEnd::Found(end) => end,
                    LineEnd::NeedData => return Ok(Step::NeedData),
                    // gunicorn 27 reports an over-long chunk line as a bad size, whatever it holds.
                    LineEnd::TooLong => {
                        return Err(RecvError::InvalidChunkSize(Detail::new(
                            b"chunk line too long",
                        )));
                    }
                    LineEnd::BareLf(p) => return Err(line_error(&buf[..p], &buf[..p])),
                };
                let line = &buf[..end];
                let (size, ext_len) = parse_chunk_line(line)?;
                self.extension_bytes += ext_len as u64;
                if self.extension_bytes > EXTENSION_ALLOWANCE
                    && self.extension_bytes > self.data_bytes
                {
                    return Err(RecvError::InvalidChunkExtension(Detail::new(
                        b"too many chunk extension bytes",
                    )));
                }
                self.searched = 0;
                self.state = if size == 0 {
                    State::Trailers { line_start: 0, fields: FieldParser::new(Section::Trailers) }
                } else {
                    State::Data(size)
                };
                Ok(Step::Skip(end + 2))
            }
            State::Data(remaining) => {
                if buf.is_empty() {
                    return Ok(Step::NeedData);
                }
                let n = (*remaining).min(buf.len() as u64);
                *remaining -= n;
                self.data_bytes += n;
                if *remaining == 0 {
                    self.state = State::DataEnd;
                }
                Ok(Step::Data(n as usize))
            }
            State::DataEnd => match buf {
                [b'\r', b'\n', ..] => {
                    self.state = State::Size;
                    Ok(Step::Skip(2))
                }
                [] | [b'\r'] => Ok(Step::NeedData),
                _ => Err(RecvError::ChunkMissingTerminator(Detail::new(&buf[..buf.len().min(2)]))),
            },
            State::Trailers { line_start, fields } => loop {
                let start = *line_start;
                let cap = cfg.limits.head_buffer();
                let by_cap = cap.saturating_sub(start).saturating_sub(2);
                let by_field = cfg.limits.field_size.saturating_sub(2);
                if let Some(next) = fields.quick_line(
                    buf,
                    start,
                    by_cap.min(by_field),
                    cfg,
                    false,
                    Version::HTTP_11,
                ) {
                    *line_start = next?;
                    self.searched = *line_start;
                    continue;
                }
                match line_end(buf, start, &mut self.searched, by_cap.min(by_field)) {
                    LineEnd::Found(end) if end == start => {
                        fields.end(buf, cfg, false, Version::HTTP_11)?;
                        let fields =
                            core::mem::replace(fields, FieldParser::new(Section::Trailers));
                        return Ok(Step::End(end + 2, trailers(buf, end, fields)));
                    }
                    LineEnd::Found(end) => {
                        fields.line(buf, start, end, cfg, false, Version::HTTP_11)?;
                        *line_start = end + 2;
                        self.searched = end + 2;
                    }
                    LineEnd::NeedData => return Ok(Step::NeedData),
                    LineEnd::TooLong => {
                        let which = if by_field <= by_cap {
                            HeadLimit::FieldSize
                        } else {
                            HeadLimit::Trailers
                        };
                        return Err(RecvError::LimitRequestHeaders(which));
                    }
                    LineEnd::BareLf(p) => {
                        return Err(RecvError::InvalidHeader(Detail::new(&buf[start..p])));
                    }
                }
            },
        }
    }
}

/// Copies a complete trailer section (`buf[..end]`, without its final CRLF) out.
fn trailers(buf: &[u8], end: usize, f: FieldParser) -> Trailers {
    if f.fields.is_empty() {
        return Trailers::default();
    }
    let mut raw = Vec::with_capacity(end + f.folded.len());
    raw.extend_from_slice(&buf[..end]);
    let mut fields = f.fields;
    let base = end as u32;
    raw.extend_from_slice(&f.folded);
    for &i in &f.folded_fields {
        fields[i].value.start += base;
        fields[i].value.end += base;
    }
    Trailers { raw, fields }
}

/// An error in a chunk line: about the extension once a `;` was seen, else the size.
fn line_error(seen: &[u8], detail: &[u8]) -> RecvError {
    if seen.contains(&b';') {
        RecvError::InvalidChunkExtension(Detail::new(detail))
    } else {
        RecvError::InvalidChunkSize(Detail::new(detail))
    }
}

/// `chunk-size [ chunk-ext ]` (RFC 9112 §7.1): returns the size and the extension length.
fn parse_chunk_line(line: &[u8]) -> Result<(u64, usize), RecvError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let bad_size = || RecvError::InvalidChunkSize(Detail::new(line));
    if digits == 0 {
        return Err(bad_size());
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        };
        size =
            size.checked_mul(16).and_then(|s| s.checked_add(u64::from(d))).ok_or_else(bad_size)?;
    }
    let ext = &line[digits..];
    parse_extensions(ext).map_err(|seen_semicolon| {
        if seen_semicolon {
            RecvError::InvalidChunkExtension(Detail::new(line))
        } else {
            bad_size()
        }
    })?;
    Ok((size, ext.len()))
}

/// `chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )`, `ext-val = token /
/// quoted-string` (RFC 9112 §7.1.1). The error tells whether a `;` had been seen (so the
/// fault is in an extension rather than the size).
fn parse_extensions(s: &[u8]) -> Result<(), bool> {
    let mut i = 0;
    let mut seen = false;
    let skip_ows = |i: &mut usize| {
        while *i < s.len() && is_ows(s[*i]) {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && is_token(s[*i]) {
            *i += 1;
        }
        *i > start
    };
    while i < s.len() {
        skip_ows(&mut i);
        if s.get(i) != Some(&b';') {
            return Err(seen);
        }
        seen = true;
        i += 1;
        skip_ows(&mut i);
        if !token(&mut i) {
            return Err(true);
        }
        let mut j = i;
        skip_ows(&mut j);
        if s.get(j) == Some(&b'=') {
            i = j + 1;
            skip_ows(&mut i);
            if s.get(i) == Some(&b'"') {
                i = quoted_string_end(s, i).ok_or(true)?;
            } else if !token(&mut i) {
                return Err(true);
            }
        }
    }
    Ok(())
}

/// `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE` (RFC 9110 §5.6.4), starting
/// at `s[start] == '"'`; returns the index after the closing quote.
fn quoted_string_end(s: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\' => {
                let next = *s.get(i + 1)?;
                if !(next == b'\t' || next == b' ' || (0x21..=0x7e).contains(&next) || next >= 0x80)
                {
                    return None;
                }
                i += 2;
            }
            b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => i += 1,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_lines() {
        assert_eq!(parse_chunk_line(b"5").unwrap(), (5, 0));
        assert_eq!(parse_chunk_line(b"00000aF").unwrap(), (0xaf, 0));
        assert_eq!(parse_chunk_line(b"ffffffffffffffff").unwrap(), (u64::MAX, 0));
        assert_eq!(parse_chunk_line(b"0000000000000000001").unwrap(), (1, 0));
        assert_eq!(parse_chunk_line(b"5;a").unwrap().0, 5);
        assert_eq!(parse_chunk_line(b"5 ; a = b ;c=\"x \\\" y\"").unwrap().0, 5);
        for bad_size in [
            &b""[..],
            b"x",
            b"0x5",
            b"+5",
            b"-5",
            b" 5",
            b"5 ",
            b"5_0",
            b"10000000000000000",
            b"5x",
        ] {
            assert!(
                matches!(parse_chunk_line(bad_size), Err(RecvError::InvalidChunkSize(_))),
                "{bad_size:?}"
            );
        }
        for bad_ext in [
            &b"5;"[..],
            b"5;=b",
            b"5;a=",
            b"5;a=\"x",
            b"5;a=b c",
            b"5;a ",
            b"5;a=\x00",
            b"5;a=\"\x01\"",
        ] {
            assert!(
                matches!(parse_chunk_line(bad_ext), Err(RecvError::InvalidChunkExtension(_))),
                "{bad_ext:?}"
            );
        }
    }
}
