//! The fault proxy: against a loopback echo server (bytes, cut, stall, drop), and with a real
//! `Database` pool on PostgreSQL and MariaDB in front of it.

use std::net::SocketAddr;
use std::time::Duration;

use barycenter_jobs_core::Database;
use barycenter_jobs_test_support::proxy::{FaultProxy, Mode};
use barycenter_jobs_test_support::{TestDb, backend_tests};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

/// Generous bound for anything that should happen "now".
const SOON: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for. It can only make a broken proxy look working
/// when the proxy is slower than this, never the reverse.
const QUIET: Duration = Duration::from_millis(300);

/// An echo server on 127.0.0.1; the task ends with the test's runtime.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn roundtrip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut got = vec![0; msg.len()];
    timeout(SOON, s.read_exact(&mut got))
        .await
        .expect("echo within 5 s")
        .unwrap();
    assert_eq!(got, msg);
}

/// The peer closed (EOF or reset) within `SOON`.
async fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 16];
    match timeout(SOON, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("read {n} bytes from a connection that should be closed"),
        Err(_) => panic!("connection still open 5 s after it should have been closed"),
    }
}

#[tokio::test]
async fn forwards_cuts_and_restores() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
    roundtrip(&mut a, b"hello").await;
    // A payload larger than the proxy's buffer, both ways.
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    roundtrip(&mut a, &big).await;
    assert_eq!(proxy.stats().live, 1);

    proxy.cut().await;
    assert_eq!(proxy.mode(), Mode::Cut);
    assert_eq!(proxy.stats().live, 0);
    assert_closed(&mut a).await;
    // New connections are accepted, then closed at once.
    let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_closed(&mut b).await;
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.refused), (2, 1));

    proxy.restore();
    let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
    roundtrip(&mut c, b"again").await;
    assert_eq!(proxy.accepted(), 3);
}

#[tokio::test]
async fn stall_holds_traffic_until_restored() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
    roundtrip(&mut a, b"before").await;

    proxy.stall();
    a.write_all(b"held").await.unwrap();
    let mut got = [0u8; 4];
    assert!(
        timeout(QUIET, a.read_exact(&mut got)).await.is_err(),
        "bytes crossed a stalled proxy"
    );
    // A connection opened during the stall is kept, not refused, and gets no answer either.
    let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
    b.write_all(b"late").await.unwrap();
    let mut late = [0u8; 4];
    assert!(timeout(QUIET, b.read_exact(&mut late)).await.is_err());
    assert_eq!(proxy.stats().live, 2);
    assert_eq!(proxy.stats().refused, 0);

    proxy.restore();
    // What was sent during the stall arrives, in order, on both connections.
    timeout(SOON, a.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"held");
    timeout(SOON, b.read_exact(&mut late))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&late, b"late");
    roundtrip(&mut a, b"after").await;
}

#[tokio::test]
async fn cut_during_a_stall_closes_everything() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
    roundtrip(&mut a, b"x").await;
    proxy.stall();
    proxy.cut().await;
    assert_closed(&mut a).await;
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_port_and_connections() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let addr = proxy.addr();
    let mut a = TcpStream::connect(addr).await.unwrap();
    roundtrip(&mut a, b"x").await;
    drop(proxy);
    assert_closed(&mut a).await;
    let deadline = Instant::now() + SOON;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "proxy port still accepting 5 s after drop"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
#[should_panic(expected = "loopback addresses only")]
async fn refuses_non_loopback_upstreams() {
    FaultProxy::start("192.0.2.1:5432".parse().unwrap()).await;
}

#[tokio::test]
async fn urls_through_the_proxy() {
    let proxy = FaultProxy::in_front_of("postgres://u:p@localhost/db").await;
    assert!(proxy.upstream().ip().is_loopback());
    assert_eq!(proxy.upstream().port(), 5432);
    let a = proxy.addr();
    assert_eq!(
        proxy.url_through("postgres://postgres@127.0.0.1:5432/test"),
        format!("postgres://postgres@{a}/test")
    );
    assert_eq!(
        proxy.url_through("mysql://root:pw@[::1]:3306/x?ssl-mode=disabled"),
        format!("mysql://root:pw@{a}/x?ssl-mode=disabled")
    );
    assert_eq!(
        proxy.url_through("mysql://localhost"),
        format!("mysql://{a}")
    );
}

/// `SELECT 1` on the pool, with the driver's error.
async fn select_one(db: &Database) -> Result<(), sqlx::Error> {
    match db {
        Database::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(drop),
        Database::MySql(p) => sqlx::query("SELECT 1").execute(p).await.map(drop),
        _ => unreachable!("server tests only"),
    }
}

/// Far above the pool's 10 s acquire timeout: a query that neither answers nor fails by
/// then is hanging, which is a failure of its own.
const BOUND: Duration = Duration::from_secs(30);

async fn pool_survives_a_cut(t: &TestDb) {
    let proxy = FaultProxy::in_front_of(&t.url).await;
    let db = Database::connect(&proxy.url_through(&t.url)).await.unwrap();
    select_one(&db).await.unwrap();
    assert!(proxy.accepted() >= 1);
    assert!(proxy.stats().live >= 1);

    proxy.cut().await;
    let started = Instant::now();
    let during = timeout(BOUND, select_one(&db))
        .await
        .expect("a query on a cut connection must fail, not hang");
    assert!(during.is_err(), "a query got through a cut proxy");
    eprintln!(
        "{:?}: query failed after {:?}: {}",
        t.backend(),
        started.elapsed(),
        during.unwrap_err()
    );
    // Whatever the pool tried during the cut was closed at once.
    assert_eq!(proxy.stats().live, 0);

    proxy.restore();
    timeout(BOUND, select_one(&db))
        .await
        .expect("query after restore hung")
        .expect("query after restore");
    assert!(proxy.stats().live >= 1);
}

async fn pool_survives_a_stall(t: &TestDb) {
    let proxy = FaultProxy::in_front_of(&t.url).await;
    let db = Database::connect(&proxy.url_through(&t.url)).await.unwrap();
    select_one(&db).await.unwrap();
    let live = proxy.stats().live;

    proxy.stall();
    assert!(
        timeout(Duration::from_secs(1), select_one(&db))
            .await
            .is_err(),
        "a query answered through a stalled proxy"
    );
    // The connections are held open, as on a dead network, not closed.
    assert!(proxy.stats().live >= live);
    assert_eq!(proxy.stats().refused, 0);

    proxy.restore();
    timeout(BOUND, select_one(&db))
        .await
        .expect("query after restore hung")
        .expect("query after restore");
}

backend_tests!([postgres, mysql] pool_survives_a_cut, pool_survives_a_stall);
