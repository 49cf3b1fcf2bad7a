//! The layers around the service's routes, one concern each, in the order a request meets
//! them:
//!
//! | layer                 | wraps                                   | refuses with                  |
//! |-----------------------|-----------------------------------------|-------------------------------|
//! | [`peer`]              | every path (once unauthenticated use is allowed) | 403 + warning        |
//! | [`auth`]              | GraphQL, `/health` and `/metrics` unless opened | 401 / 403             |
//! | [`limit`]             | GraphQL                                 | 413, answered by the reader   |
//! | [`headers`]           | the dashboard                           | (sets headers only)           |
//!
//! Each is a tower [`Layer`](tower::Layer) usable and tested on its own around any service
//! answering `http::Response<http_body_util::Full<bytes::Bytes>>`; the
//! [builder](super::AdminServiceBuilder) composes them with the [router](super::route) and
//! the [GraphQL core](super::graphql). The peer check and the security headers are
//! tower-http's layers with our rules; authorization and the body limit are ours, in
//! tower-http's shape, because their answers (the JSON error bodies, a 415 before a 413)
//! are this service's.

pub(crate) mod auth;
pub(crate) mod headers;
pub(crate) mod limit;
pub(crate) mod peer;
