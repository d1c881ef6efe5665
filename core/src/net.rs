//! Who is on the other end of a connection, and the allow-lists that decide whom to trust.
//!
//! [`AllowList`] is the one type behind gunicorn's `forwarded_allow_ips` and
//! `proxy_allow_ips`: a comma-separated list of IP addresses, CIDR networks and `*`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

/// The peer of a connection, as the shell learnt it from `accept(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A peer on a unix socket. gunicorn trusts these as it trusts no TCP peer by
    /// default: forwarded headers, secure-scheme headers and PROXY headers are all
    /// accepted from them (the socket's file permissions are the access control).
    Unix,
}

impl Peer {
    /// The IP address of a TCP peer.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Peer::Tcp(addr) => Some(addr.ip()),
            Peer::Unix => None,
        }
    }
}

/// One entry of an allow-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    V4 { addr: u32, prefix: u8 },
    V6 { addr: u128, prefix: u8 },
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (*self, canonical(ip)) {
            (Net::V4 { addr, prefix }, IpAddr::V4(ip)) => {
                let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
                u32::from(ip) & mask == addr & mask
            }
            (Net::V6 { addr, prefix }, IpAddr::V6(ip)) => {
                let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
                u128::from(ip) & mask == addr & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports for an
/// IPv4 client) is matched as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// A set of trusted peers: IP addresses, CIDR networks, or everyone (`*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    any: bool,
    nets: Vec<Net>,
}

/// Why an allow-list entry was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowListError {
    /// The entry as written.
    pub entry: String,
}

impl fmt::Display for AllowListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a valid IP address or network", self.entry)
    }
}

impl core::error::Error for AllowListError {}

impl AllowList {
    /// Nobody is trusted.
    pub fn none() -> Self {
        AllowList::default()
    }

    /// Everyone is trusted (`*`).
    pub fn any() -> Self {
        AllowList { any: true, nets: Vec::new() }
    }

    /// gunicorn's default for `forwarded_allow_ips` and `proxy_allow_ips`.
    pub fn localhost() -> Self {
        AllowList::parse("127.0.0.1,::1").unwrap_or_default()
    }

    /// Parses a comma-separated list (`"127.0.0.1, 10.0.0.0/8, ::1, *"`). Surrounding
    /// whitespace and empty entries are ignored. A network with host bits set
    /// (`10.0.0.1/8`) is accepted as the network that contains it.
    ///
    /// ```
    /// use ferrocorn_core::{AllowList, Peer};
    ///
    /// let list = AllowList::parse("127.0.0.1, 10.0.0.0/8, ::1")?;
    /// assert!(list.allows(&Peer::Tcp("10.1.2.3:4000".parse().unwrap())));
    /// assert!(!list.allows(&Peer::Tcp("192.0.2.1:4000".parse().unwrap())));
    /// assert!(AllowList::parse("10.0.0.0/33").is_err());
    /// # Ok::<(), ferrocorn_core::AllowListError>(())
    /// ```
    pub fn parse(list: &str) -> Result<Self, AllowListError> {
        Self::from_entries(list.split(','))
    }

    /// Parses entries that are already separate (a list setting from a config file).
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, AllowListError> {
        let mut out = AllowList::default();
        for raw in entries {
            let entry = raw.trim();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                out.any = true;
                continue;
            }
            let err = || AllowListError { entry: entry.to_string() };
            let (ip_text, prefix) = match entry.split_once('/') {
                Some((ip, bits)) => {
                    if bits.is_empty()
                        || !bits.bytes().all(|b| b.is_ascii_digit())
                        || bits.len() > 3
                    {
                        return Err(err());
                    }
                    (ip, Some(bits.parse::<u8>().map_err(|_| err())?))
                }
                None => (entry, None),
            };
            let ip: IpAddr = ip_text.parse().map_err(|_| err())?;
            let net = match ip {
                IpAddr::V4(v4) => {
                    let prefix = prefix.unwrap_or(32);
                    if prefix > 32 {
                        return Err(err());
                    }
                    Net::V4 { addr: u32::from(v4), prefix }
                }
                IpAddr::V6(v6) => {
                    let prefix = prefix.unwrap_or(128);
                    if prefix > 128 {
                        return Err(err());
                    }
                    match (v6.to_ipv4_mapped(), prefix >= 96) {
                        (Some(v4), true) => Net::V4 { addr: u32::from(v4), prefix: prefix - 96 },
                        _ => Net::V6 { addr: u128::from(v6), prefix },
                    }
                }
            };
            out.nets.push(net);
        }
        Ok(out)
    }

    /// Whether this list contains `*`.
    pub fn is_any(&self) -> bool {
        self.any
    }

    /// Whether an IP address is on the list.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.any || self.nets.iter().any(|n| n.contains(ip))
    }

    /// Whether a peer is trusted: unix-socket peers always are (as in gunicorn).
    pub fn allows(&self, peer: &Peer) -> bool {
        match peer {
            Peer::Unix => true,
            Peer::Tcp(addr) => self.allows_ip(addr.ip()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_localhost_list() {
        let l = AllowList::localhost();
        assert!(l.allows_ip(ip("127.0.0.1")));
        assert!(l.allows_ip(ip("::1")));
        assert!(l.allows_ip(ip("::ffff:127.0.0.1")));
        assert!(!l.allows_ip(ip("127.0.0.2")));
        assert!(!l.allows_ip(ip("10.0.0.1")));
        assert!(l.allows(&Peer::Unix));
    }

    #[test]
    fn cidr_and_star() {
        let l = AllowList::parse(" 10.0.0.0/8 , fd00::/8,").unwrap();
        assert!(l.allows_ip(ip("10.255.1.2")));
        assert!(!l.allows_ip(ip("11.0.0.1")));
        assert!(l.allows_ip(ip("fd12::1")));
        assert!(!l.allows_ip(ip("fe80::1")));
        assert!(AllowList::parse("*").unwrap().allows_ip(ip("8.8.8.8")));
        assert!(AllowList::parse("0.0.0.0/0").unwrap().allows_ip(ip("8.8.8.8")));
        assert!(!AllowList::none().allows_ip(ip("127.0.0.1")));
    }

    #[test]
    fn bad_entries() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "localhost",
            "1.2.3",
            "10.0.0.0/8/8",
        ] {
            assert!(AllowList::parse(bad).is_err(), "{bad}");
        }
    }
}
