//! The textual address and port grammars of a v1 line (§2.1), written so that they can
//! judge a field the end of the buffer has cut short.
//!
//! Each function returns `Err(())` when no continuation of `text` can be valid,
//! `Ok(None)` when `text` is a valid beginning but not (yet) a whole value, and
//! `Ok(Some(v))` when it is a whole value (which more characters may still extend or
//! spoil). The caller knows whether the field ended (a space or the CRLF followed).

use core::net::{Ipv4Addr, Ipv6Addr};

/// Outcome of reading a field that may be incomplete.
pub(crate) type Field<T> = Result<Option<T>, ()>;

/// One step of a decimal IPv4 octet: no leading zero (`01` is refused, as RFC 6943 §3.1.1
/// advises: it reads as octal to some parsers), value at most 255.
fn octet_step(value: u16, len: usize, digit: u8) -> Result<u16, ()> {
    if len == 1 && value == 0 {
        return Err(());
    }
    let next = value * 10 + u16::from(digit - b'0');
    if next > 255 { Err(()) } else { Ok(next) }
}

/// A dotted-quad IPv4 address, `d.d.d.d`, four decimal octets without leading zeros.
pub(crate) fn ipv4(text: &[u8]) -> Field<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut index = 0usize; // the octet being read
    let mut value = 0u16;
    let mut len = 0usize;
    for &b in text {
        match b {
            b'0'..=b'9' => {
                value = octet_step(value, len, b)?;
                len += 1;
            }
            b'.' if len > 0 && index < 3 => {
                octets[index] = value as u8;
                index += 1;
                value = 0;
                len = 0;
            }
            _ => return Err(()),
        }
    }
    if index == 3 && len > 0 {
        octets[3] = value as u8;
        Ok(Some(Ipv4Addr::from(octets)))
    } else {
        Ok(None)
    }
}

/// A port: decimal 0-65535, no sign, no leading zero (`0` itself is fine), no `_`.
pub(crate) fn port(text: &[u8]) -> Field<u16> {
    let mut value = 0u32;
    for (i, &b) in text.iter().enumerate() {
        if !b.is_ascii_digit() || (i == 1 && text[0] == b'0') {
            return Err(());
        }
        value = value * 10 + u32::from(b - b'0');
        if value > u32::from(u16::MAX) {
            return Err(());
        }
    }
    if text.is_empty() { Ok(None) } else { Ok(Some(value as u16)) }
}

/// What came just before the current position of an IPv6 text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Before {
    /// Nothing, or a hex group being read (then `digits > 0`).
    Start,
    /// A `:` at the very start: only a second `:` may follow.
    LeadingColon,
    /// A `:` after a group: a group or a second `:` may follow.
    Colon,
    /// The `::`.
    DoubleColon,
}

/// The address being assembled: groups before the `::` and groups after it.
struct Groups {
    head: [u16; 8],
    head_len: usize,
    tail: [u16; 8],
    tail_len: usize,
    elided: bool,
}

impl Groups {
    fn count(&self) -> usize {
        self.head_len + self.tail_len
    }

    /// How many explicit groups the address may hold: 8, or 7 when `::` stands for at
    /// least one zero group (RFC 4291 §2.2: "one or more groups of 16 bits of zeros").
    fn room(&self) -> usize {
        if self.elided { 7 } else { 8 }
    }

    fn push(&mut self, group: u16) {
        if self.elided {
            self.tail[self.tail_len] = group;
            self.tail_len += 1;
        } else {
            self.head[self.head_len] = group;
            self.head_len += 1;
        }
    }

    fn address(&self) -> Ipv6Addr {
        let mut all = [0u16; 8];
        all[..self.head_len].copy_from_slice(&self.head[..self.head_len]);
        all[8 - self.tail_len..].copy_from_slice(&self.tail[..self.tail_len]);
        Ipv6Addr::from(all)
    }
}

/// The embedded dotted-quad of `x:x:x:x:x:x:d.d.d.d` (RFC 4291 §2.2 form 3).
struct Quad {
    octets: [u8; 4],
    index: usize,
    value: u16,
    len: usize,
}

/// An IPv6 address in RFC 4291 §2.2 text: one to four hex digits per group (either
/// case), at most one `::`, optionally ending in a dotted quad. No zone id (`%eth0`), no
/// brackets.
pub(crate) fn ipv6(text: &[u8]) -> Field<Ipv6Addr> {
    let mut groups = Groups { head: [0; 8], head_len: 0, tail: [0; 8], tail_len: 0, elided: false };
    let mut before = Before::Start;
    let mut digits = [0u8; 4];
    let mut ndigits = 0usize;
    let mut quad: Option<Quad> = None;

    for &b in text {
        if let Some(q) = quad.as_mut() {
            match b {
                b'0'..=b'9' => {
                    q.value = octet_step(q.value, q.len, b)?;
                    q.len += 1;
                }
                b'.' if q.len > 0 && q.index < 3 => {
                    q.octets[q.index] = q.value as u8;
                    q.index += 1;
                    q.value = 0;
                    q.len = 0;
                }
                _ => return Err(()),
            }
            continue;
        }
        match b {
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                if before == Before::LeadingColon || ndigits == 4 {
                    return Err(());
                }
                // A new group needs room for itself.
                if ndigits == 0 && groups.count() >= groups.room() {
                    return Err(());
                }
                digits[ndigits] = b;
                ndigits += 1;
            }
            b':' if ndigits > 0 => {
                groups.push(hex_group(&digits[..ndigits]));
                ndigits = 0;
                // After this colon comes a group, or (if there is no `::` yet) the `::`,
                // which itself stands for at least one group.
                if groups.count() >= groups.room() {
                    return Err(());
                }
                before = Before::Colon;
            }
            b':' => match before {
                Before::Start => before = Before::LeadingColon,
                Before::LeadingColon | Before::Colon if !groups.elided => {
                    groups.elided = true;
                    before = Before::DoubleColon;
                }
                _ => return Err(()),
            },
            b'.' => {
                // The group being read was the first octet of a dotted quad, which takes
                // the place of the last two groups.
                let first = decimal_octet(&digits[..ndigits])?;
                let fits = if groups.elided { groups.count() <= 5 } else { groups.count() == 6 };
                if !fits {
                    return Err(());
                }
                quad = Some(Quad { octets: [first, 0, 0, 0], index: 1, value: 0, len: 0 });
                ndigits = 0;
            }
            _ => return Err(()),
        }
    }

    if let Some(q) = quad {
        if q.index < 3 || q.len == 0 {
            return Ok(None);
        }
        let [a, b, c, _] = q.octets;
        groups.push(u16::from_be_bytes([a, b]));
        groups.push(u16::from_be_bytes([c, q.value as u8]));
    } else if ndigits > 0 {
        groups.push(hex_group(&digits[..ndigits]));
        if groups.count() < groups.room() && !groups.elided {
            return Ok(None);
        }
    } else if before != Before::DoubleColon {
        return Ok(None);
    }
    Ok(Some(groups.address()))
}

/// The value of one to four hex digits (already checked).
fn hex_group(digits: &[u8]) -> u16 {
    digits.iter().fold(0u16, |acc, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        (acc << 4) | u16::from(v)
    })
}

/// A group read as hex digits that turns out to be the first octet of a dotted quad.
fn decimal_octet(digits: &[u8]) -> Result<u8, ()> {
    if digits.is_empty() {
        return Err(());
    }
    let mut value = 0u16;
    for (len, &d) in digits.iter().enumerate() {
        if !d.is_ascii_digit() {
            return Err(());
        }
        value = octet_step(value, len, d)?;
    }
    Ok(value as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::String;

    fn v6(s: &str) -> Field<Ipv6Addr> {
        ipv6(s.as_bytes())
    }

    #[test]
    fn ipv4_cases() {
        assert_eq!(ipv4(b"192.168.0.1"), Ok(Some(Ipv4Addr::new(192, 168, 0, 1))));
        assert_eq!(ipv4(b"0.0.0.0"), Ok(Some(Ipv4Addr::UNSPECIFIED)));
        assert_eq!(ipv4(b"255.255.255.255"), Ok(Some(Ipv4Addr::BROADCAST)));
        for prefix in ["", "1", "19", "192.", "192.168.0", "192.168.0."] {
            assert_eq!(ipv4(prefix.as_bytes()), Ok(None), "{prefix}");
        }
        for bad in [
            "01.1.1.1",
            "1.1.1.00",
            "256.1.1.1",
            "1..1.1",
            ".1.1.1",
            "1.1.1.1.",
            "1.1.1.1.1",
            "1.1.1.-1",
            "1.1.1.a",
            "1.1.1.1 ",
        ] {
            assert_eq!(ipv4(bad.as_bytes()), Err(()), "{bad}");
        }
    }

    #[test]
    fn port_cases() {
        assert_eq!(port(b"0"), Ok(Some(0)));
        assert_eq!(port(b"65535"), Ok(Some(65535)));
        assert_eq!(port(b"443"), Ok(Some(443)));
        assert_eq!(port(b""), Ok(None));
        for bad in ["65536", "041234", "00", "+1", "-1", "4_1", "1 ", "999999"] {
            assert_eq!(port(bad.as_bytes()), Err(()), "{bad}");
        }
    }

    #[test]
    fn ipv6_cases() {
        let ok = [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("2001:DB8::ff00:42:8329", "2001:db8::ff00:42:8329"),
            ("2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
            ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
            ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
            ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("1::1.2.3.4", "1::102:304"),
            ("1:2:3:4:5::1.2.3.4", "1:2:3:4:5:0:102:304"),
        ];
        for (text, want) in ok {
            let want: Ipv6Addr = want.parse().unwrap();
            assert_eq!(v6(text), Ok(Some(want)), "{text}");
        }
        let bad = [
            ":1",
            "1:::",
            ":::",
            "1::2::3",
            "12345::",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7:8::",
            "1:2:3:4::5:6:7:8",
            "::1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::8",
            "1:2:3:4:5:6::7:8",
            "1:2:3:4:5:6::1.2.3.4",
            "1:2:3:4:5:6:7:8.1.2.3",
            "fe80::1%eth0",
            "[::1]",
            "1:2:3:4:5:6:7:1.2.3.4",
            "::01.2.3.4",
            "::1.2.3.256",
            "::1.2.3.4.5",
            "::a.2.3.4",
            "::1.2.3.4:1",
            "g::",
            " ::",
            "1:2:3:4:5:6:7:8:",
        ];
        for text in bad {
            assert_eq!(v6(text), Err(()), "{text}");
        }
        for prefix in
            ["", ":", "1", "1:", "1:2:3:4:5:6:7", "::ffff:1.2", "::ffff:1.2.3.", "2001:db8:"]
        {
            assert_eq!(v6(prefix), Ok(None), "{prefix}");
        }
    }

    /// Completions that reach a valid address from every live state of the machine:
    /// finish a dotted quad, finish a group, add groups, add `::`.
    fn completions() -> Vec<String> {
        let firsts = ["", "0", ":", ":0", "::", ".0", ".0.0", ".0.0.0", "0.0", "0.0.0"];
        let lasts = ["", "::", ":0", "::0", "0", ":0.0.0.0"];
        let mut out = Vec::new();
        for f in firsts {
            for k in 0..8 {
                for l in lasts {
                    out.push(format!("{f}{}{l}", ":0".repeat(k)));
                }
            }
        }
        out
    }

    /// Strings built from the pieces of IPv6 text, so that the edge cases (group counts
    /// around 7 and 8, `::` placement, dotted quads) come up often.
    fn ipv6_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("0"),
            Just("1"),
            Just("ffff"),
            Just("0000"),
            Just("12345"),
            Just(":"),
            Just("::"),
            Just("1.2.3.4"),
            Just("."),
            Just("255"),
            Just("01"),
        ];
        let pieces = proptest::collection::vec(piece, 0..16).prop_map(|v| v.concat());
        // Around-the-limit shapes: n groups, `::` somewhere (or not), a dotted quad (or not).
        let shaped = (0usize..=9, proptest::option::of(0usize..=9), any::<bool>()).prop_map(
            |(n, elide, quad)| {
                let mut parts: Vec<String> = (1..=n).map(|g| format!("{g:x}")).collect();
                if quad {
                    parts.push("1.2.3.4".into());
                }
                match elide {
                    Some(at) if at <= parts.len() => {
                        let (head, tail) = parts.split_at(at);
                        format!("{}::{}", head.join(":"), tail.join(":"))
                    }
                    _ => parts.join(":"),
                }
            },
        );
        prop_oneof![2 => shaped, 1 => pieces, 1 => "[0-9a-fA-F:.]{0,24}", 1 => "[0:.1]{0,24}"]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// This parser and std's agree on what a whole IPv6 address is, and on its value.
        #[test]
        fn ipv6_agrees_with_std(s in ipv6_like()) {
            match v6(&s) {
                Ok(Some(addr)) => prop_assert_eq!(s.parse::<Ipv6Addr>().ok(), Some(addr)),
                Ok(None) | Err(()) => {
                    let std_says = s.parse::<Ipv6Addr>();
                    prop_assert!(std_says.is_err(), "{} refused but std parses {:?}", s, std_says);
                }
            }
        }

        /// A live prefix always has a valid completion (errors are reported as early as
        /// possible), and every prefix of a valid address is live.
        #[test]
        fn ipv6_prefix_exactness(s in ipv6_like()) {
            if v6(&s).is_ok() {
                let completed = completions().iter().any(|c| matches!(v6(&format!("{s}{c}")), Ok(Some(_))));
                prop_assert!(completed, "{} is live but has no completion", s);
            }
            if let Ok(Some(_)) = v6(&s) {
                for cut in 0..s.len() {
                    prop_assert!(v6(&s[..cut]).is_ok(), "prefix {} of {}", &s[..cut], s);
                }
            }
        }

        /// Every textual form of any address parses back to it.
        #[test]
        fn ipv6_forms_round_trip(segs in any::<[u16; 8]>(), upper in any::<bool>(), pad in any::<bool>()) {
            let addr = Ipv6Addr::from(segs);
            let mut long: String = segs.iter().map(|g| if pad { format!("{g:04x}") } else { format!("{g:x}") }).collect::<Vec<_>>().join(":");
            if upper { long = long.to_uppercase(); }
            prop_assert_eq!(v6(&long), Ok(Some(addr)));
            prop_assert_eq!(v6(&addr.to_string()), Ok(Some(addr)));
            let quad = format!("{}:{}", segs[..6].iter().map(|g| format!("{g:x}")).collect::<Vec<_>>().join(":"), Ipv4Addr::from(u128::from(addr) as u32));
            prop_assert_eq!(v6(&quad), Ok(Some(addr)));
        }

        #[test]
        fn ipv4_agrees_with_std(s in "[0-9.]{0,16}") {
            if let Ok(Some(addr)) = ipv4(s.as_bytes()) {
                prop_assert_eq!(s.parse::<Ipv4Addr>().ok(), Some(addr));
            } else if let Ok(addr) = s.parse::<Ipv4Addr>() {
                prop_assert!(false, "{} refused but std parses {}", s, addr);
            }
        }
    }
}
