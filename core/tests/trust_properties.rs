//! Properties of the trust decisions:
//! - allow-list membership agrees with a naive model of CIDR networks;
//! - no header-map policy but `dangerous` ever lets two distinct field names land on the
//!   same environ variable (so `X-Auth_Token` can never pass as `X-Auth-Token`).

#![cfg(feature = "gunicorn")]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ferrocorn_core::config::{HeaderPolicy, ProtoConfig, UnderscoreHeaders};
use ferrocorn_core::environ::{ConnInfo, EnvironConfig, Local, Name, build};
use ferrocorn_core::{AllowList, Connection, Event, Peer};
use proptest::prelude::*;

/// The naive model: compare the first `prefix` bits one by one.
fn naive_contains(net: &[u8], prefix: u32, ip: &[u8]) -> bool {
    net.len() == ip.len()
        && (0..prefix as usize).all(|bit| {
            let mask = 0x80u8 >> (bit % 8);
            net[bit / 8] & mask == ip[bit / 8] & mask
        })
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn ip_near(base: IpAddr) -> impl Strategy<Value = IpAddr> {
    // Addresses that share a random number of leading bits with `base`.
    let bytes = octets(base);
    let len = bytes.len();
    (0..=len * 8, any::<u128>()).prop_map(move |(keep, noise)| {
        let mut out = bytes.clone();
        for bit in keep..len * 8 {
            if (noise >> (bit % 128)) & 1 == 1 {
                out[bit / 8] ^= 0x80 >> (bit % 8);
            }
        }
        if len == 4 {
            IpAddr::V4(Ipv4Addr::new(out[0], out[1], out[2], out[3]))
        } else {
            let arr: [u8; 16] = out.try_into().unwrap();
            IpAddr::V6(Ipv6Addr::from(arr))
        }
    })
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into())),
        any::<[u8; 16]>().prop_map(|o| IpAddr::V6(o.into()))
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn cidr_membership_agrees_with_the_naive_model(
        (net, prefix, probes) in any_ip().prop_flat_map(|net| {
            let bits = if net.is_ipv4() { 32u32 } else { 128 };
            (Just(net), 0..=bits, prop::collection::vec(prop_oneof![ip_near(net), any_ip()], 1..16))
        })
    ) {
        let list = AllowList::parse(&format!("{net}/{prefix}")).unwrap();
        for ip in probes {
            // IPv4-mapped IPv6 peers are matched as the IPv4 address they carry.
            let probe = match ip { IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4), v4 => v4 };
            let expect = naive_contains(&octets(net), prefix, &octets(probe));
            // A v4-mapped network written in IPv6 form is not generated here (net is random).
            if matches!(net, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()) { continue; }
            prop_assert_eq!(list.allows_ip(ip), expect, "{}/{} vs {}", net, prefix, ip);
        }
    }

    #[test]
    fn header_map_never_merges_distinct_names(
        names in prop::collection::vec("[A-Za-z]{1,3}([-_][A-Za-z]{1,3}){0,3}", 1..8),
        refuse in any::<bool>(),
        trusted in any::<bool>(),
    ) {
        let mut policy = HeaderPolicy::default();
        policy.underscore = if refuse { UnderscoreHeaders::Refuse } else { UnderscoreHeaders::Drop };
        let mut cfg = ProtoConfig::default();
        cfg.headers = policy.clone();
        let mut req = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for (i, n) in names.iter().enumerate() {
            req.extend_from_slice(format!("{n}: v{i}\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let peer = if trusted { Peer::Tcp("127.0.0.1:4000".parse().unwrap()) } else { Peer::Tcp("192.0.2.1:4000".parse().unwrap()) };
        let mut conn = Connection::new(Arc::new(cfg), peer);
        conn.receive(&req);
        let head = match conn.next_event() {
            Ok(Event::Request(h)) => h.clone(),
            Err(e) => {
                // Only `refuse` may reject, and only for a name with `_`.
                prop_assert!(refuse && names.iter().any(|n| n.contains('_')), "{e}");
                return Ok(());
            }
            other => panic!("{other:?}"),
        };
        let conn_info = ConnInfo { peer, local: Local::Tcp(SocketAddr::from(([127, 0, 0, 1], 8000))), tls: false };
        let mut env_cfg = EnvironConfig::default();
        env_cfg.headers = policy;
        let env = build(&head, &conn_info, &env_cfg).unwrap();
        for (name, _) in env.iter() {
            let Name::Http(var) = name else { continue };
            // Every field that fed this variable has one and the same name (modulo case).
            let feeders: Vec<String> = head.headers()
                .filter(|(n, _)| {
                    let key: Vec<u8> = n.iter().map(|b| if *b == b'-' { b'_' } else { b.to_ascii_uppercase() }).collect();
                    key == var[5..]
                })
                .map(|(n, _)| String::from_utf8_lossy(n).to_ascii_lowercase())
                .collect();
            prop_assert!(feeders.windows(2).all(|w| w[0] == w[1]), "{:?} merged into {}", feeders, String::from_utf8_lossy(var));
        }
    }
}
