//! A TCP proxy between a pool and a database server that can cut or stall the network, for
//! fault-injection tests.
//!
//! ```ignore
//! let t = barycenter_jobs_test_support::postgres().await;
//! let proxy = FaultProxy::in_front_of(&t.url).await;
//! let db = Database::connect(&proxy.url_through(&t.url)).await?;
//! proxy.cut().await;   // every connection closed, new ones accepted and closed at once
//! proxy.restore();     // traffic flows again (new connections; the cut ones are gone)
//! proxy.stall();       // connections stay open, nothing is forwarded: statements hang
//! proxy.restore();     // held traffic is delivered, forwarding resumes
//! ```
//!
//! Only loopback upstreams are accepted, and the proxy listens on `127.0.0.1` only. It holds
//! at most [`MAX_CONNECTIONS`] connections and a [`BUFFER_SIZE`] buffer per direction of
//! each; everything it spawned is aborted when it is dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Most connections proxied at once; more are accepted and closed (counted as refused).
pub const MAX_CONNECTIONS: usize = 64;
/// Bytes buffered per direction of a connection.
pub const BUFFER_SIZE: usize = 16 * 1024;
/// How long a new connection may take to reach the upstream before it is given up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`FaultProxy::cut`] waits for every connection to be gone before panicking.
const CUT_DEADLINE: Duration = Duration::from_secs(5);

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Forward,
    /// Live connections are closed; new ones are accepted and closed at once.
    Cut,
    /// Connections are kept (new ones accepted), but nothing is forwarded either way and no
    /// upstream connection is opened: like a network that stopped delivering packets.
    Stall,
}

/// Counters, cumulative since [`FaultProxy::start`] except `live`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections the listener accepted, refused ones included.
    pub accepted: u64,
    /// Accepted connections closed at once (proxy cut, or [`MAX_CONNECTIONS`] reached).
    pub refused: u64,
    /// Connections open through the proxy now.
    pub live: usize,
}

struct Shared {
    mode: watch::Sender<Mode>,
    live: watch::Sender<usize>,
    accepted: AtomicU64,
    refused: AtomicU64,
}

/// Counts a connection as live from acceptance until its task ends or is aborted.
struct LiveGuard(Arc<Shared>);

impl LiveGuard {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.live.send_modify(|n| *n += 1);
        Self(Arc::clone(shared))
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.send_modify(|n| *n -= 1);
    }
}

/// A fault-injecting TCP proxy in front of one loopback server; see the [module docs](self).
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("mode", &self.mode())
            .field("stats", &self.stats())
            .finish()
    }
}

impl FaultProxy {
    /// A proxy on `127.0.0.1:<free port>` forwarding to `upstream`.
    ///
    /// # Panics
    ///
    /// When `upstream` is not a loopback address (this tool is for local test servers only),
    /// or no port can be bound.
    pub async fn start(upstream: SocketAddr) -> Self {
        assert!(
            upstream.ip().is_loopback(),
            "FaultProxy forwards to loopback addresses only, not {upstream}"
        );
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the fault proxy on 127.0.0.1");
        let addr = listener.local_addr().expect("fault proxy address");
        let shared = Arc::new(Shared {
            mode: watch::Sender::new(Mode::Forward),
            live: watch::Sender::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let accept_task = tokio::spawn(accept_loop(listener, upstream, Arc::clone(&shared)));
        Self {
            addr,
            upstream,
            shared,
            accept_task,
        }
    }

    /// A proxy in front of the server of `db_url` (`scheme://[user@]host[:port]/...`; the
    /// port defaults to 5432 for `postgres`, 3306 for `mysql` / `mariadb`).
    ///
    /// # Panics
    ///
    /// When the URL has no host, its host does not resolve to a loopback address, or as
    /// [`FaultProxy::start`].
    pub async fn in_front_of(db_url: &str) -> Self {
        let (scheme, authority) = split_url(db_url).0;
        let host_port = host_port(authority);
        let default_port = match scheme {
            "postgres" | "postgresql" => 5432,
            "mysql" | "mariadb" => 3306,
            other => panic!("no default port for {other}:// URLs: give one in {db_url:?}"),
        };
        let target = if has_port(host_port) {
            host_port.to_owned()
        } else {
            format!("{host_port}:{default_port}")
        };
        let upstream = tokio::net::lookup_host(target.as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot resolve {target}: {e}"))
            .find(|a| a.ip().is_loopback())
            .unwrap_or_else(|| panic!("{target} has no loopback address"));
        Self::start(upstream).await
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server it forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// `db_url` with its `host:port` replaced by the proxy's; user, database and query stay.
    pub fn url_through(&self, db_url: &str) -> String {
        let ((scheme, authority), rest) = split_url(db_url);
        let userinfo = authority.rsplit_once('@').map(|(u, _)| u);
        match userinfo {
            Some(u) => format!("{scheme}://{u}@{}{rest}", self.addr),
            None => format!("{scheme}://{}{rest}", self.addr),
        }
    }

    /// What the proxy does now.
    pub fn mode(&self) -> Mode {
        *self.shared.mode.borrow()
    }

    /// Close every connection and refuse new ones (accept and close at once) until
    /// [`restore`](Self::restore). Returns once every proxied connection is closed, so a
    /// statement sent afterwards cannot get through.
    ///
    /// # Panics
    ///
    /// When connections are still open after 5 s (the proxy would be broken).
    pub async fn cut(&self) {
        self.shared.mode.send_replace(Mode::Cut);
        let mut live = self.shared.live.subscribe();
        let closed = tokio::time::timeout(CUT_DEADLINE, live.wait_for(|n| *n == 0)).await;
        assert!(
            matches!(closed, Ok(Ok(_))),
            "fault proxy: connections still open {CUT_DEADLINE:?} after cut()"
        );
    }

    /// Keep every connection (and accept new ones) but forward nothing in either direction,
    /// so statements hang as on a dead network, until [`restore`](Self::restore). Bytes
    /// already received are held, and delivered on restore.
    pub fn stall(&self) {
        self.shared.mode.send_replace(Mode::Stall);
    }

    /// Forward again. After a cut, only new connections exist; after a stall, the held
    /// connections carry on where they stopped.
    pub fn restore(&self) {
        self.shared.mode.send_replace(Mode::Forward);
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        Stats {
            accepted: self.shared.accepted.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
            live: *self.shared.live.borrow(),
        }
    }

    /// Connections accepted so far, refused ones included.
    pub fn accepted(&self) -> u64 {
        self.stats().accepted
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept task owns the listener and the JoinSet of connections: aborting it drops
        // both, and dropping a JoinSet aborts every connection task.
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    let mut mode = shared.mode.subscribe();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // Reap finished connections so the set stays bounded.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                // Close everything at once, wherever each task is (even mid-connect).
                if *mode.borrow_and_update() == Mode::Cut {
                    connections.abort_all();
                }
            }
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else {
                    // Out of descriptors or similar: back off instead of spinning on accept.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                shared.accepted.fetch_add(1, Ordering::Relaxed);
                if *shared.mode.borrow() == Mode::Cut || connections.len() >= MAX_CONNECTIONS {
                    shared.refused.fetch_add(1, Ordering::Relaxed);
                    drop(client);
                    continue;
                }
                let guard = LiveGuard::new(&shared);
                connections.spawn(serve(client, upstream, shared.mode.subscribe(), guard));
            }
        }
    }
}

/// How one direction of a connection ended.
#[derive(PartialEq, Eq)]
enum End {
    /// The sender closed its side; the other direction may go on.
    Eof,
    /// Cut, or an I/O error: the whole connection goes.
    Closed,
}

async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    _live: LiveGuard,
) {
    // A dead network does not complete handshakes either: connect only while forwarding.
    if !wait_forwarding(&mut mode).await {
        return;
    }
    let server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(s)) => s,
        _ => return,
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut to_server = std::pin::pin!(pump(client_read, server_write, mode.clone()));
    let mut to_client = std::pin::pin!(pump(server_read, client_write, mode));
    // Returning drops both sockets, closing the connection on both sides.
    tokio::select! {
        end = &mut to_server => if end == End::Eof { to_client.await; },
        end = &mut to_client => if end == End::Eof { to_server.await; },
    }
}

/// Waits until the mode is `Forward` (true) or `Cut` (false).
async fn wait_forwarding(mode: &mut watch::Receiver<Mode>) -> bool {
    loop {
        match *mode.borrow_and_update() {
            Mode::Forward => return true,
            Mode::Cut => return false,
            Mode::Stall => {}
        }
        if mode.changed().await.is_err() {
            return false;
        }
    }
}

/// Copies `from` to `to`, reading and writing only while the mode is `Forward`; the mode is
/// checked before every read and every write, so nothing moves once `stall()` returns.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) -> End {
    let mut buf = vec![0u8; BUFFER_SIZE];
    loop {
        let n = loop {
            if !wait_forwarding(&mut mode).await {
                return End::Closed;
            }
            tokio::select! {
                // `read` and `write` are cancel-safe: a select! that drops them loses no bytes.
                read = from.read(&mut buf) => match read {
                    // Dropping `to` on return shuts down its write side: the EOF is forwarded.
                    Ok(0) => return End::Eof,
                    Ok(n) => break n,
                    Err(_) => return End::Closed,
                },
                changed = mode.changed() => if changed.is_err() { return End::Closed },
            }
        };
        let mut sent = 0;
        while sent < n {
            if !wait_forwarding(&mut mode).await {
                return End::Closed;
            }
            tokio::select! {
                written = to.write(&buf[sent..n]) => match written {
                    // A TCP write of a non-empty buffer takes at least one byte, or fails.
                    Ok(0) | Err(_) => return End::Closed,
                    Ok(k) => sent += k,
                },
                changed = mode.changed() => if changed.is_err() { return End::Closed },
            }
        }
    }
}

/// `((scheme, authority), rest)` of `scheme://authority/rest?query`; `rest` keeps its `/`.
fn split_url(url: &str) -> ((&str, &str), &str) {
    let (scheme, after) = url
        .split_once("://")
        .unwrap_or_else(|| panic!("not a scheme://host URL: {url:?}"));
    let end = after.find(['/', '?']).unwrap_or(after.len());
    ((scheme, &after[..end]), &after[end..])
}

/// `host[:port]` of an authority, without `user[:password]@`.
fn host_port(authority: &str) -> &str {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    assert!(!host_port.is_empty(), "URL without a host: {authority:?}");
    host_port
}

/// Whether `host[:port]` (IPv6 hosts in brackets) has a port.
fn has_port(host_port: &str) -> bool {
    match host_port.rfind(']') {
        Some(close) => host_port[close..].contains(':'),
        None => host_port.contains(':'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("postgres://postgres@127.0.0.1:5432/test"),
            (("postgres", "postgres@127.0.0.1:5432"), "/test")
        );
        assert_eq!(
            split_url("mysql://root:pw@localhost?ssl-mode=disabled"),
            (("mysql", "root:pw@localhost"), "?ssl-mode=disabled")
        );
        assert_eq!(host_port("u:p@[::1]:5432"), "[::1]:5432");
        assert!(has_port("[::1]:5432"));
        assert!(!has_port("[::1]"));
        assert!(!has_port("localhost"));
    }
}
