//! nginx as a reverse proxy in front of the installed `ferrocorn -k gthread`, with
//! upstream keep-alive: the configuration that leaks connections or turns into 502s when a
//! server closes idle keep-alive connections carelessly. nginx (Debian's package) is
//! installed by scripts/setup-peers.sh; the test starts its own nginx on 127.0.0.1 with a
//! config in a temporary directory and ends it by its pid.

use crate::support;

use std::net::SocketAddr;

use support::{Client, Nginx, start_installed, wait_until};

/// `GET path` on a fresh connection with `Connection: close`: (status line, body).
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut c = Client::connect(addr);
    c.send(format!("GET {path} HTTP/1.1\r\nHost: proxied\r\nConnection: close\r\n\r\n").as_bytes());
    let out = String::from_utf8_lossy(&c.read_to_end().0).into_owned();
    let status = out.lines().next().unwrap_or("").to_string();
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    (status, body)
}

/// Established TCP connections whose local port is `port` (the server side).
fn established_to(port: u16) -> usize {
    let mut n = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (f.get(1), f.get(3)) else { continue };
            let local_port = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && *state == "01" {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn nginx_upstream_keepalive_reuses_connections_and_survives_idle_closes() {
    assert!(
        std::path::Path::new("/usr/sbin/nginx").exists(),
        "nginx is missing: run scripts/setup-peers.sh"
    );
    // ferrocorn closes idle keep-alive connections after 1 s; nginx keeps up to 4 idle.
    let server = start_installed(
        "ferrocorn",
        &[
            "wsgi_app:app",
            "-b",
            "127.0.0.1:0",
            "-w",
            "1",
            "-k",
            "gthread",
            "--threads",
            "2",
            "--keep-alive",
            "1",
        ],
        &[],
    );
    let app = server.addr();
    server.wait_booted(1);

    let nginx = Nginx::start(app, "");
    let proxy = nginx.addr;

    // Many requests through the proxy reuse a few upstream connections.
    for i in 0..200 {
        let (status, body) = get(proxy, &format!("/?n={i}"));
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 200 OK", "Hello, World!"),
            "request {i}"
        );
    }
    let upstream = established_to(app.port());
    assert!(
        (1..=4).contains(&upstream),
        "{upstream} upstream connections for 200 requests: they were not reused"
    );

    // ferrocorn closes the idle ones after its keep-alive timeout...
    wait_until(20, "idle upstream connections to be closed", || established_to(app.port()) == 0);
    // ...and the proxy goes on without a single error.
    for i in 0..50 {
        let (status, body) = get(proxy, &format!("/?after-idle={i}"));
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 200 OK", "Hello, World!"),
            "request {i} after the idle close"
        );
    }
    let errors = nginx.errors();
    assert!(!errors.contains("upstream prematurely closed"), "{errors}");
}
