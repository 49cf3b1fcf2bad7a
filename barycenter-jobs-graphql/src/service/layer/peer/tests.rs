//! Unit tests of the peer check: the rules on request heads, then the layer around a
//! stand-in service.

use std::convert::Infallible;

use http_body_util::BodyExt;
use tower::{Layer, ServiceExt, service_fn};

use super::cases::*;
use super::*;

fn rules() -> LoopbackOnly {
    let mut rules = LoopbackOnly::default();
    rules.allow_host("jobs.internal:8081");
    rules
}

#[test]
fn answers_loopback_and_allowed_hosts_only() {
    let rules = rules();
    for host in LOOPBACK_HOSTS {
        assert_eq!(rules.check(&from_loopback(Some(host))), Ok(()), "{host}");
    }
    for host in FOREIGN_HOSTS {
        assert_eq!(
            rules.check(&from_loopback(Some(host))),
            Err(PeerRefusal::ForeignHost),
            "{host}"
        );
    }
}

#[test]
fn needs_a_loopback_peer() {
    let rules = rules();
    // Every loopback form of the peer passes, IPv4-mapped IPv6 included (a dual-stack
    // listener on `[::]` reports 127.0.0.1 that way).
    for peer in LOOPBACK_PEERS {
        assert!(
            rules.check(&from_peer(peer, Some("localhost"))).is_ok(),
            "{peer}"
        );
    }
    // Any other peer is refused whatever `Host` says.
    for peer in FOREIGN_PEERS {
        for host in ["localhost", "127.0.0.1:8081", "jobs.internal"] {
            assert_eq!(
                rules.check(&from_peer(peer, Some(host))),
                Err(PeerRefusal::ForeignPeer),
                "{peer} {host}"
            );
        }
    }
    // The host attached no peer address: the door stays shut.
    assert_eq!(
        rules.check(&parts(Some("localhost"))),
        Err(PeerRefusal::UnknownPeer)
    );
}

#[test]
fn needs_one_loopback_host() {
    let rules = rules();
    assert_eq!(
        rules.check(&from_loopback(None)),
        Err(PeerRefusal::MissingHost)
    );
    // HTTP/2 names the host in `:authority`, which lands in the URI.
    let mut h2 = from_loopback(None);
    h2.uri = "http://localhost:8081/admin/jobs".parse().unwrap();
    assert!(rules.check(&h2).is_ok());
    h2.uri = "http://evil.example/admin/jobs".parse().unwrap();
    assert_eq!(rules.check(&h2), Err(PeerRefusal::ForeignHost));
    // Two `Host` headers: which one a proxy or a framework reads is anyone's guess.
    let mut two = from_loopback(Some("localhost"));
    two.headers
        .append(HOST, http::HeaderValue::from_static("evil.example"));
    assert_eq!(rules.check(&two), Err(PeerRefusal::ForeignHost));
    // A `Host` that is not visible ASCII is unreadable, not skipped.
    let mut odd = from_loopback(None);
    odd.headers.insert(
        HOST,
        http::HeaderValue::from_bytes(b"local\xffhost").unwrap(),
    );
    assert_eq!(rules.check(&odd), Err(PeerRefusal::ForeignHost));
}

#[test]
fn refuses_forwarded_requests() {
    let rules = rules();
    for header in FORWARDING_HEADERS {
        let mut p = from_loopback(Some("localhost"));
        p.headers
            .insert(header, http::HeaderValue::from_static("for=192.0.2.9"));
        assert_eq!(rules.check(&p), Err(PeerRefusal::Forwarded), "{header}");
    }
}

#[tokio::test]
async fn as_a_layer_it_answers_403_before_the_inner_service() {
    let inner = service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"served"))))
    });
    let svc = layer(rules()).layer(inner);
    let request = |peer: &str, host: &str| {
        let mut req = Request::get("/admin/jobs/ui")
            .header(HOST, host)
            .body(())
            .unwrap();
        req.extensions_mut().insert(PeerAddr(peer.parse().unwrap()));
        req
    };

    let res = svc
        .clone()
        .oneshot(request("127.0.0.1:1", "localhost:8081"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.into_body().collect().await.unwrap().to_bytes(),
        "served"
    );

    let res = svc
        .clone()
        .oneshot(request("192.0.2.2:1", "localhost"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        r#"{"errors":[{"message":"client not allowed: unauthenticated use answers clients on this machine only; configure a bearer token to serve others"}]}"#
    );

    let res = svc
        .oneshot(request("127.0.0.1:1", "evil.example"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
