//! Unit tests of the authorization: the rules on request heads, then the layer around a
//! stand-in service.

use std::convert::Infallible;

use http::header::HOST;
use http_body_util::BodyExt;
use tower::{ServiceExt, service_fn};

use super::*;
use crate::service::layer::peer::cases::{
    FOREIGN_HOSTS, FOREIGN_PEERS, LOOPBACK_HOSTS, LOOPBACK_PEERS, from_loopback, from_peer,
};
use crate::service::layer::peer::{FORWARDING_HEADERS, PeerAddr};

fn parts(auth: Option<&str>, host: Option<&str>) -> Parts {
    let mut b = http::Request::builder().uri("/");
    if let Some(a) = auth {
        b = b.header(AUTHORIZATION, a);
    }
    if let Some(h) = host {
        b = b.header(HOST, h);
    }
    b.body(()).unwrap().into_parts().0
}

#[test]
fn compares_secrets() {
    assert!(constant_time_eq(b"s3cret", b"s3cret"));
    assert!(!constant_time_eq(b"s3cret", b"s3cres"));
    assert!(!constant_time_eq(b"s3cret", b"s3cre"));
    assert!(!constant_time_eq(b"s3cret", b"s3cret!"));
    assert!(!constant_time_eq(b"s3cret", b""));
    assert!(constant_time_eq(b"", b""));
}

#[test]
fn parses_bearer_headers() {
    assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
    assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
    assert_eq!(bearer_token(b"Basic abc"), None);
    assert_eq!(bearer_token(b"Bearer "), None);
    assert_eq!(bearer_token(b"Bear"), None);
}

fn open() -> Authorization {
    let mut open = Authorization::default();
    open.allow_unauthenticated();
    open.allow_host("jobs.internal:8081");
    open
}

fn peer_refusal(refusal: PeerRefusal) -> Result<Principal, Refusal> {
    Err(Refusal::Peer(refusal))
}

#[test]
fn closed_unless_configured() {
    let closed = Authorization::default();
    assert_eq!(
        closed.authenticate(&from_loopback(Some("localhost"))),
        Err(Refusal::NotConfigured)
    );
    let open = open();
    for host in LOOPBACK_HOSTS {
        let p = open.authenticate(&from_loopback(Some(host))).unwrap();
        assert_eq!(p, Principal::new("anonymous", Role::Operate), "{host}");
    }
    for host in FOREIGN_HOSTS {
        assert_eq!(
            open.authenticate(&from_loopback(Some(host))),
            peer_refusal(PeerRefusal::ForeignHost),
            "{host}"
        );
    }
}

/// The peer check is run again before `anonymous` is answered: the cases of the peer
/// module's own tests, through `authenticate`.
#[test]
fn unauthenticated_use_needs_a_loopback_peer() {
    let open = open();
    for peer in LOOPBACK_PEERS {
        assert!(
            open.authenticate(&from_peer(peer, Some("localhost")))
                .is_ok(),
            "{peer}"
        );
    }
    for peer in FOREIGN_PEERS {
        for host in ["localhost", "127.0.0.1:8081", "jobs.internal"] {
            let gate = open.gate().unwrap();
            assert_eq!(
                gate.check(&from_peer(peer, Some(host))),
                Err(PeerRefusal::ForeignPeer),
                "{peer} {host}"
            );
            assert_eq!(
                open.authenticate(&from_peer(peer, Some(host))),
                peer_refusal(PeerRefusal::ForeignPeer),
                "{peer} {host}"
            );
        }
    }
    // The host attached no peer address: the door stays shut.
    assert_eq!(
        open.authenticate(&parts(None, Some("localhost"))),
        peer_refusal(PeerRefusal::UnknownPeer)
    );
}

#[test]
fn unauthenticated_use_needs_one_loopback_host() {
    let open = open();
    assert_eq!(
        open.authenticate(&from_loopback(None)),
        peer_refusal(PeerRefusal::MissingHost)
    );
    let mut h2 = from_loopback(None);
    h2.uri = "http://localhost:8081/admin/jobs".parse().unwrap();
    assert!(open.authenticate(&h2).is_ok());
    h2.uri = "http://evil.example/admin/jobs".parse().unwrap();
    assert_eq!(
        open.authenticate(&h2),
        peer_refusal(PeerRefusal::ForeignHost)
    );
    let mut two = from_loopback(Some("localhost"));
    two.headers
        .append(HOST, http::HeaderValue::from_static("evil.example"));
    assert_eq!(
        open.authenticate(&two),
        peer_refusal(PeerRefusal::ForeignHost)
    );
    let mut odd = from_loopback(None);
    odd.headers.insert(
        HOST,
        http::HeaderValue::from_bytes(b"local\xffhost").unwrap(),
    );
    assert_eq!(
        open.authenticate(&odd),
        peer_refusal(PeerRefusal::ForeignHost)
    );
}

#[test]
fn unauthenticated_use_refuses_forwarded_requests() {
    let open = open();
    for header in FORWARDING_HEADERS {
        let mut p = from_loopback(Some("localhost"));
        p.headers
            .insert(header, http::HeaderValue::from_static("for=192.0.2.9"));
        assert_eq!(
            open.authenticate(&p),
            peer_refusal(PeerRefusal::Forwarded),
            "{header}"
        );
    }
}

#[test]
fn the_gate_is_off_without_allow_unauthenticated() {
    let mut tokens = Authorization::default();
    tokens.add_token("op-token", Principal::new("ops", Role::Operate));
    // A token holder on another machine, through a proxy, with no `Host`: served.
    let mut p = parts(Some("Bearer op-token"), None);
    p.extensions
        .insert(PeerAddr("192.0.2.9:1".parse().unwrap()));
    p.headers.insert(
        "x-forwarded-for",
        http::HeaderValue::from_static("192.0.2.10"),
    );
    assert!(tokens.gate().is_none());
    assert_eq!(tokens.authenticate(&p).unwrap().name, "ops");
}

#[test]
fn tokens_per_role_and_host_check() {
    let mut auth = Authorization::default();
    auth.add_token("op-token", Principal::new("ops", Role::Operate));
    auth.add_token("ro-token", Principal::new("viewer", Role::Read));
    let who = |a| auth.authenticate(&parts(Some(a), None));
    assert_eq!(who("Bearer op-token").unwrap().role, Role::Operate);
    assert_eq!(who("Bearer ro-token").unwrap().name, "viewer");
    assert_eq!(who("Bearer ro-tokeN"), Err(Refusal::Unauthenticated));
    assert_eq!(
        auth.authenticate(&parts(None, None)),
        Err(Refusal::Unauthenticated)
    );

    let mut check = auth.clone();
    check.set_check(Arc::new(|p: &Parts| {
        match p.headers.get("x-scope").and_then(|v| v.to_str().ok()) {
            Some("jobs:write") => Ok(Principal::new("client-1", Role::Operate)),
            Some("jobs:read") => Ok(Principal::new("client-2", Role::Read)),
            Some(_) => Err(Denied::Forbidden),
            None => Err(Denied::Unauthenticated),
        }
    }));
    let mut p = parts(Some("Bearer not-a-token"), None);
    p.headers
        .insert("x-scope", http::HeaderValue::from_static("jobs:read"));
    assert_eq!(check.authenticate(&p).unwrap().name, "client-2");
    p.headers
        .insert("x-scope", http::HeaderValue::from_static("other"));
    assert_eq!(check.authenticate(&p), Err(Refusal::Forbidden));
    // A configured token still works beside the check.
    assert_eq!(
        check
            .authenticate(&parts(Some("Bearer op-token"), None))
            .unwrap()
            .name,
        "ops"
    );
}

/// The layer around a service that answers with the principal it was handed.
fn layered(
    auth: Authorization,
) -> Authorize<
    impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone,
> {
    AuthorizeLayer::new(Arc::new(auth)).layer(service_fn(|req: Request<()>| async move {
        let name = match req.extensions().get::<Principal>() {
            Some(p) => format!("{} ({})", p.name, p.role.as_str()),
            None => "nobody".to_owned(),
        };
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(name))))
    }))
}

async fn answer(
    svc: impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible>,
    authorization: Option<&str>,
) -> (StatusCode, Option<HeaderValue>, Bytes) {
    let mut req = Request::get("/admin/jobs");
    if let Some(a) = authorization {
        req = req.header(AUTHORIZATION, a);
    }
    // A principal the client's side put there is replaced, never trusted.
    let mut req = req.body(()).unwrap();
    req.extensions_mut()
        .insert(Principal::new("forged", Role::Operate));
    let res = svc.oneshot(req).await.unwrap();
    let challenge = res.headers().get(WWW_AUTHENTICATE).cloned();
    let status = res.status();
    (
        status,
        challenge,
        res.into_body().collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test]
async fn as_a_layer_it_attaches_the_principal_or_refuses() {
    let mut auth = Authorization::default();
    auth.add_token("ro-token", Principal::new("viewer", Role::Read));
    let svc = layered(auth);

    let (status, _, body) = answer(svc.clone(), Some("Bearer ro-token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "viewer (read)");

    let (status, challenge, body) = answer(svc, Some("Bearer forged")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.unwrap(), "Bearer");
    assert_eq!(body, r#"{"errors":[{"message":"unauthorized"}]}"#);

    let (status, challenge, body) = answer(layered(Authorization::default()), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge.is_none());
    assert_eq!(
        body,
        r#"{"errors":[{"message":"no authorization configured: give the admin service a bearer token or a check, or allow unauthenticated loopback use"}]}"#
    );

    // Unauthenticated use allowed, but this request has no peer address: refused here too,
    // with no peer check in front.
    let (status, _, body) = answer(layered(open()), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        std::str::from_utf8(&body)
            .unwrap()
            .contains("client not allowed")
    );
}
