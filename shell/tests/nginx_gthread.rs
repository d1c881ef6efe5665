//! nginx as a reverse proxy in front of the installed `ferrocorn -k gthread`, with
//! upstream keep-alive: the configuration that leaks connections or turns into 502s when a
//! server closes idle keep-alive connections carelessly. nginx (Debian's package) is
//! installed by scripts/setup-peers.sh; the test starts its own nginx on 127.0.0.1 with a
//! config in a temporary directory and ends it by its pid.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{TempDir, start_installed, wait_until};

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET path` on a fresh connection with `Connection: close`: (status line, body).
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: proxied\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
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

    let dir = TempDir::new("nginx");
    let port = free_port();
    let tmp = dir.path("");
    let tmp = tmp.to_str().unwrap();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log warn;\nevents {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n  fastcgi_temp_path {tmp}/fcgi;\n  \
         uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n  upstream app {{ server {app}; keepalive 4; }}\n  \
         server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://app;\n      proxy_http_version 1.1;\n      \
         proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
    );
    let conf_path = dir.path("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new("/usr/sbin/nginx")
        .args(["-c", conf_path.to_str().unwrap(), "-p", tmp, "-e", &format!("{tmp}/error.log")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _nginx = Nginx(child);
    let proxy: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_until(20, "nginx to answer", || TcpStream::connect(proxy).is_ok());

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
    let errors = std::fs::read_to_string(dir.path("error.log")).unwrap_or_default();
    assert!(!errors.contains("upstream prematurely closed"), "{errors}");
}
