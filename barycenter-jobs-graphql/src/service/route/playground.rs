//! The GraphiQL page on the playground path, once the host enables it.
//!
//! async-graphql's page loads React and GraphiQL from a CDN, so it is off by default
//! ([`GraphiQl::Off`]); the host serves it as is ([`GraphiQl::Cdn`]) or points it at its own
//! copies ([`GraphiQl::Assets`]). The page holds no data and posts its queries to the mount
//! path, so it is served without authorization (the peer check of unauthenticated use still
//! applies): `GET` gets the HTML, other methods 405 (`Allow: GET`).

use std::convert::Infallible;
use std::task::{Context, Poll};

use async_graphql::http::GraphiQLSource;
use bytes::Bytes;
use futures_util::future::{Ready, ready};
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response};
use http_body_util::Full;
use tower_service::Service;

use crate::service::response::{internal, method_not_allowed};

/// Where the GraphiQL page loads React and GraphiQL from, if it is served at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GraphiQl {
    /// Not served (the default): nothing is fetched from a CDN unless the host says so.
    Off,
    /// From unpkg.com, as async-graphql's page has it.
    Cdn,
    /// From the host's own copies under this URL prefix (unpkg's layout).
    Assets(String),
}

/// The GraphiQL page, rendered once.
#[derive(Clone)]
pub(crate) struct Playground {
    html: Bytes,
}

impl Playground {
    /// The page posting its queries to `endpoint` (the mount path, `/` for the root),
    /// loading its scripts as `graphiql` says; `None` when it is [`GraphiQl::Off`].
    pub(crate) fn new(endpoint: &str, graphiql: &GraphiQl) -> Option<Self> {
        let page = GraphiQLSource::build()
            .endpoint(endpoint)
            .title("barycenter-jobs admin")
            .finish();
        let html = match graphiql {
            GraphiQl::Off => return None,
            GraphiQl::Cdn => page,
            GraphiQl::Assets(base) => page
                .replace("https://unpkg.com", base)
                .lines()
                .filter(|line| !line.contains("https://graphql.org/favicon.ico"))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        Some(Self { html: html.into() })
    }
}

impl<B> Service<Request<B>> for Playground {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(if req.method() == Method::GET {
            Response::builder()
                .header(CONTENT_TYPE, "text/html; charset=utf-8")
                .body(Full::new(self.html.clone()))
                .unwrap_or_else(|_| internal())
        } else {
            method_not_allowed("GET")
        }))
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn serves_the_page_over_get_only() {
        assert!(Playground::new("/admin/jobs", &GraphiQl::Off).is_none());
        let own = GraphiQl::Assets("/static/graphiql".to_owned());
        let page = Playground::new("/admin/jobs", &own).unwrap();
        let res = page
            .clone()
            .oneshot(Request::get("/admin/jobs/playground").body(()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let html = res.into_body().collect().await.unwrap().to_bytes();
        let html = std::str::from_utf8(&html).unwrap();
        assert!(html.contains("/static/graphiql/graphiql@"));
        assert!(!html.contains("unpkg.com") && !html.contains("graphql.org/favicon"));
        let res = page
            .oneshot(Request::post("/admin/jobs/playground").body(()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.headers()[http::header::ALLOW], "GET");
    }
}
