//! Python's `repr()` of a `str` decoded as latin-1, which gunicorn puts in its error texts
//! (`Invalid HTTP method: 'G ET'`). Error pages and log lines use it so they read the same.

use alloc::string::String;

/// Appends `repr(bytes.decode("latin-1"))` to `out`.
pub fn push_repr(out: &mut String, bytes: &[u8]) {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') { '"' } else { '\'' };
    out.push(quote);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if char::from(b) == quote => {
                out.push('\\');
                out.push(quote);
            }
            // C0, DEL, C1 controls, NBSP and soft hyphen are not printable in Python.
            0x00..=0x1f | 0x7f..=0xa0 | 0xad => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\x");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
            _ => out.push(char::from(b)),
        }
    }
    out.push(quote);
}

/// `repr(bytes.decode("latin-1"))` as a new string.
pub fn repr(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    push_repr(&mut s, bytes);
    s
}

#[cfg(test)]
mod tests {
    use super::repr;

    #[test]
    fn matches_python() {
        assert_eq!(repr(b"GET"), "'GET'");
        assert_eq!(repr(b"it's"), "\"it's\"");
        assert_eq!(repr(b"'\""), "'\\'\"'");
        assert_eq!(repr(b"a\r\n\x00\x7f\xa0\xe9"), "'a\\r\\n\\x00\\x7f\\xa0\u{e9}'");
        assert_eq!(repr(b"back\\slash"), "'back\\\\slash'");
    }
}
