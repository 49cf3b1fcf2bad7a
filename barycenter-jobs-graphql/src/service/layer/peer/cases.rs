//! The requests both the peer check's tests and the authorization's tests put to the
//! loopback rules (the authorization runs them again before it answers `anonymous`).

use http::Request;
use http::header::HOST;
use http::request::Parts;

use super::PeerAddr;

/// `Host` values the rules answer (with `jobs.internal:8081` allowed).
pub(in crate::service::layer) const LOOPBACK_HOSTS: [&str; 8] = [
    "localhost",
    "localhost:8081",
    "LOCALHOST",
    "app.localhost",
    "127.0.0.1:8081",
    "127.1.2.3",
    "[::1]:8081",
    "jobs.internal",
];

/// `Host` values the rules refuse.
pub(in crate::service::layer) const FOREIGN_HOSTS: [&str; 5] = [
    "evil.example",
    "evil.example:8081",
    "localhost.evil.example",
    "127.0.0.1.nip.io",
    "[::2]",
];

/// Loopback peers, IPv4-mapped IPv6 included (a dual-stack listener on `[::]` reports
/// 127.0.0.1 that way).
pub(in crate::service::layer) const LOOPBACK_PEERS: [&str; 4] = [
    "127.0.0.1:1",
    "127.9.9.9:1",
    "[::1]:1",
    "[::ffff:127.0.0.1]:1",
];

/// Peers that are not loopback, however the request names its host.
pub(in crate::service::layer) const FOREIGN_PEERS: [&str; 6] = [
    "192.0.2.2:40000",
    "10.0.0.1:1",
    "0.0.0.0:1",
    "[::ffff:192.0.2.2]:1",
    "[fd00::2]:1",
    "[::]:1",
];

/// A request head with this `Host` (none: no header).
pub(in crate::service::layer) fn parts(host: Option<&str>) -> Parts {
    let mut b = Request::builder().uri("/");
    if let Some(h) = host {
        b = b.header(HOST, h);
    }
    b.body(()).unwrap().into_parts().0
}

/// `parts(host)` from the loopback peer 127.0.0.1:50000.
pub(in crate::service::layer) fn from_loopback(host: Option<&str>) -> Parts {
    from_peer("127.0.0.1:50000", host)
}

/// `parts(host)` from `peer`.
pub(in crate::service::layer) fn from_peer(peer: &str, host: Option<&str>) -> Parts {
    let mut p = parts(host);
    p.extensions.insert(PeerAddr(peer.parse().unwrap()));
    p
}
