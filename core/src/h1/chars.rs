//! Byte classes of RFC 9110/9112, as lookup tables, and word-at-a-time scanners.

/// `tchar` (RFC 9110 §5.6.2).
const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    t
}

/// field-vchar, SP and HTAB (RFC 9110 §5.5): everything but CTLs other than HTAB, and DEL.
const fn value_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b == 0x09 || (b >= 0x20 && b != 0x7f);
        b += 1;
    }
    t
}

static TOKEN: [bool; 256] = token_table();
static VALUE: [bool; 256] = value_table();

#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

#[inline]
pub(crate) fn is_value(b: u8) -> bool {
    VALUE[usize::from(b)]
}

pub(crate) fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token(b))
}

#[inline]
pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_ows(*first) { s = rest } else { break }
    }
    while let [rest @ .., last] = s {
        if is_ows(*last) { s = rest } else { break }
    }
    s
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `x` is below `n` (n <= 128). Exact as an "any" test.
#[inline]
fn any_below(x: u64, n: u8) -> bool {
    (x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS) != 0
}

/// Whether any byte of `x` equals `b`.
#[inline]
fn any_eq(x: u64, b: u8) -> bool {
    let y = x ^ (ONES * u64::from(b));
    (y.wrapping_sub(ONES) & !y & HIGHS) != 0
}

#[inline]
fn word(s: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(w)
}

/// Index of the first CR or LF in `s`, or `None`.
#[inline]
pub(crate) fn find_eol(s: &[u8]) -> Option<usize> {
    let mut i = simd::eol_prefix(s);
    // Skip 8 bytes at a time while none of them is below 0x0E (CR is 0x0D, LF 0x0A).
    while i + 8 <= s.len() && !any_below(word(s, i), 0x0e) {
        i += 8;
    }
    s[i..].iter().position(|&b| b == b'\r' || b == b'\n').map(|p| p + i)
}

/// Length of the prefix of `s` made of field-value bytes (VCHAR, obs-text, SP, HTAB).
#[inline]
pub(crate) fn value_run(s: &[u8]) -> usize {
    let mut i = simd::value_prefix(s);
    while i + 8 <= s.len() {
        let w = word(s, i);
        if any_below(w, 0x20) || any_eq(w, 0x7f) {
            break;
        }
        i += 8;
    }
    while i < s.len() && is_value(s[i]) {
        i += 1;
    }
    i
}

/// Length of the prefix of `s` made of request-target bytes (`0x21..=0x7E` but `#`).
#[inline]
pub(crate) fn target_run(s: &[u8]) -> usize {
    let mut i = simd::target_prefix(s);
    while i + 8 <= s.len() {
        let w = word(s, i);
        if any_below(w, 0x21) || (w & HIGHS) != 0 || any_eq(w, 0x7f) || any_eq(w, b'#') {
            break;
        }
        i += 8;
    }
    while i < s.len() && matches!(s[i], 0x21..=0x7e) && s[i] != b'#' {
        i += 1;
    }
    i
}

/// Length of a prefix of `s` made of the usual field-name bytes (`A-Z a-z 0-9 -`), found
/// 16 bytes at a time; the caller goes on byte by byte with the full token table.
#[inline]
pub(crate) fn common_token_prefix(s: &[u8]) -> usize {
    simd::common_token_prefix(s)
}

/// 16-byte steps with SSE2, through `safe_arch`'s safe wrappers of `core::arch`. Each
/// function returns how many leading bytes it could vouch for; the portable code above
/// finishes the job, so these only ever make the scans shorter, never different.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod simd {
    use safe_arch::{
        bitand_m128i, bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, m128i, max_u8_m128i,
        min_u8_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };

    #[inline]
    fn load(s: &[u8], i: usize) -> m128i {
        let chunk: &[u8; 16] = s[i..i + 16].try_into().unwrap_or(&[0; 16]);
        load_unaligned_m128i(chunk)
    }

    #[inline]
    fn splat(b: u8) -> m128i {
        set_splat_i8_m128i(b as i8)
    }

    /// Mask of the bytes of `v` that are >= `lo` (unsigned).
    #[inline]
    fn ge(v: m128i, lo: u8) -> m128i {
        cmp_eq_mask_i8_m128i(max_u8_m128i(v, splat(lo)), v)
    }

    /// Mask of the bytes of `v` that are <= `hi` (unsigned).
    #[inline]
    fn le(v: m128i, hi: u8) -> m128i {
        cmp_eq_mask_i8_m128i(min_u8_m128i(v, splat(hi)), v)
    }

    /// Scans 16 bytes at a time while every byte passes `good`; returns where it stopped
    /// (at the first bad byte, or before the last partial block).
    #[inline]
    fn prefix(s: &[u8], good: impl Fn(m128i) -> m128i) -> usize {
        let mut i = 0;
        while i + 16 <= s.len() {
            let bad = !move_mask_i8_m128i(good(load(s, i))) & 0xffff;
            if bad != 0 {
                return i + bad.trailing_zeros() as usize;
            }
            i += 16;
        }
        i
    }

    pub(super) fn eol_prefix(s: &[u8]) -> usize {
        prefix(s, |v| ge(v, 0x0e))
    }

    pub(super) fn value_prefix(s: &[u8]) -> usize {
        // >= 0x20 and not DEL (HTAB is left to the byte loop).
        prefix(s, |v| {
            let del = cmp_eq_mask_i8_m128i(v, splat(0x7f));
            bitand_m128i(ge(v, 0x20), cmp_eq_mask_i8_m128i(del, splat(0)))
        })
    }

    pub(super) fn target_prefix(s: &[u8]) -> usize {
        // 0x21..=0x7e but '#'.
        prefix(s, |v| {
            let hash = cmp_eq_mask_i8_m128i(v, splat(b'#'));
            bitand_m128i(
                bitand_m128i(ge(v, 0x21), le(v, 0x7e)),
                cmp_eq_mask_i8_m128i(hash, splat(0)),
            )
        })
    }

    pub(super) fn common_token_prefix(s: &[u8]) -> usize {
        prefix(s, |v| {
            let lower = bitor_m128i(v, splat(0x20));
            let alpha = bitand_m128i(ge(lower, b'a'), le(lower, b'z'));
            let digit = bitand_m128i(ge(v, b'0'), le(v, b'9'));
            let dash = cmp_eq_mask_i8_m128i(v, splat(b'-'));
            bitor_m128i(bitor_m128i(alpha, digit), dash)
        })
    }
}

/// Without SSE2 the portable scanners do all the work.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
mod simd {
    pub(super) fn eol_prefix(_: &[u8]) -> usize {
        0
    }
    pub(super) fn value_prefix(_: &[u8]) -> usize {
        0
    }
    pub(super) fn target_prefix(_: &[u8]) -> usize {
        0
    }
    pub(super) fn common_token_prefix(_: &[u8]) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanners_agree_with_tables() {
        for b in 0u8..=255 {
            for pos in 0..40 {
                let mut s = [b'a'; 40];
                let t = common_token_prefix(&s);
                assert_eq!(t, 32, "a full run stops before the last partial block");
                s[pos] = b;
                let common = b.is_ascii_alphanumeric() || b == b'-';
                let t = common_token_prefix(&s);
                assert!(t <= pos || common, "token prefix went past {b:#x} at {pos}");
                assert!(s[..t].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-'));
                s[pos] = b;
                let eol = find_eol(&s);
                let expect = if b == b'\r' || b == b'\n' { Some(pos) } else { None };
                assert_eq!(eol, expect, "eol {b:#x} at {pos}");
                let v = value_run(&s);
                assert_eq!(v, if is_value(b) { 40 } else { pos }, "value {b:#x}");
                let t = target_run(&s);
                let ok = (0x21..=0x7e).contains(&b) && b != b'#';
                assert_eq!(t, if ok { 40 } else { pos }, "target {b:#x}");
            }
        }
    }
}
