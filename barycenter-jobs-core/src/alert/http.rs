//! The alerts' HTTP client: hyper's pooled HTTP/1 client, with rustls for `https://` when the
//! `alerts-https` feature is on. Every request is bounded by [`REQUEST_TIMEOUT`], so a
//! receiver that never answers delays only its own delivery.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri, header};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The longest one request (connect, send, answer's head) may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(feature = "alerts-https")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "alerts-https"))]
type Connector = HttpConnector;

/// A checked URL and the host it may be logged as (its path and query may be secrets).
#[derive(Clone)]
pub(crate) struct Target {
    uri: Uri,
    host: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the path: a Slack webhook's path is its secret.
        f.debug_struct("Target").field("host", &self.host).finish()
    }
}

impl Target {
    /// Parse `url`: `http://` (or `https://` with the `alerts-https` feature) with a host.
    /// The error says why, never repeating the URL.
    pub(crate) fn parse(url: &str) -> Result<Self, &'static str> {
        let uri: Uri = url
            .parse()
            .map_err(|_| "not a URL (expected http://host/path)")?;
        match uri.scheme_str() {
            Some("http") => {}
            #[cfg(feature = "alerts-https")]
            Some("https") => {}
            #[cfg(not(feature = "alerts-https"))]
            Some("https") => {
                return Err("https needs the `alerts-https` feature of barycenter-jobs");
            }
            _ => return Err("the scheme must be http or https"),
        }
        let host = match uri.authority() {
            Some(a) if !a.host().is_empty() => {
                a.as_str().rsplit('@').next().unwrap_or("").to_owned()
            }
            _ => return Err("the URL has no host"),
        };
        Ok(Self { uri, host })
    }

    /// `host[:port]`: what logs and the audit log show of the URL.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// This URL with `suffix` appended to its path (`/start`, `/fail`).
    pub(crate) fn with_suffix(&self, suffix: &str) -> Self {
        let mut parts = self.uri.clone().into_parts();
        let (path, query) = parts
            .path_and_query
            .as_ref()
            .map_or(("", None), |pq| (pq.path(), pq.query()));
        let joined = match query {
            Some(q) => format!("{}{suffix}?{q}", path.trim_end_matches('/')),
            None => format!("{}{suffix}", path.trim_end_matches('/')),
        };
        if let Ok(pq) = joined.parse() {
            parts.path_and_query = Some(pq);
        }
        Self {
            uri: Uri::from_parts(parts).unwrap_or_else(|_| self.uri.clone()),
            host: self.host.clone(),
        }
    }
}

/// Sends POSTs; cheap to clone (one connection pool).
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    pub(crate) fn new() -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(REQUEST_TIMEOUT));
        #[cfg(feature = "alerts-https")]
        let connector = {
            http.enforce_http(false);
            // The provider named, not the process default: a host that installed another
            // one (or none) gets the same behaviour. *ring*, not aws-lc-rs: it builds with a
            // C compiler alone and is a fraction of the size; rustls 0.23.48 deprecates it
            // only for lacking post-quantum key exchange, which a webhook POST can do
            // without.
            #[allow(deprecated)]
            let provider = rustls::crypto::ring::default_provider();
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(provider)
                .expect("ring supports the default protocol versions")
                .https_or_http()
                .enable_http1()
                .wrap_connector(http)
        };
        #[cfg(not(feature = "alerts-https"))]
        let connector = http;
        Self {
            client: Client::builder(TokioExecutor::new())
                // An idle connection is not worth keeping between rare alerts.
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        }
    }

    /// POST `body` to `target`; `Ok(())` on a 2xx answer, otherwise why not (a status or an
    /// error that never includes the URL).
    pub(crate) async fn post(
        &self,
        target: &Target,
        content_type: &'static str,
        body: String,
    ) -> Result<(), String> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(target.uri.clone())
            .header(header::CONTENT_TYPE, content_type)
            .header(
                header::USER_AGENT,
                concat!("barycenter-jobs/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| "could not build the request".to_owned())?;
        match tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(request)).await {
            Err(_) => Err(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())),
            Ok(Err(e)) => Err(format!("request failed: {}", error_chain(&e))),
            Ok(Ok(response)) if response.status().is_success() => Ok(()),
            Ok(Ok(response)) => Err(format!("answered {}", response.status().as_u16())),
        }
    }
}

/// An error and its sources, on one line (hyper's own `Display` says only "client error").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The https path is wired (rustls, a handshake attempted): a plain-TCP server that
    /// answers garbage is a failed delivery with a reason, not a panic nor a hang.
    #[cfg(feature = "alerts-https")]
    #[tokio::test]
    async fn https_talks_tls_and_reports_a_bad_handshake() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
            }
        });
        let target = Target::parse(&format!("https://{addr}/hook")).unwrap();
        let err = HttpClient::new()
            .post(&target, "application/json", "{}".into())
            .await
            .unwrap_err();
        assert!(err.starts_with("request failed"), "{err}");
        assert!(!err.contains("/hook"), "{err}");
    }

    #[test]
    fn suffixes_go_on_the_path_and_hosts_hide_the_rest() {
        let t = Target::parse("http://user:pw@hc.example:8000/ping/abc/?x=1").unwrap();
        assert_eq!(t.host(), "hc.example:8000");
        assert_eq!(
            t.with_suffix("/fail").uri.to_string(),
            "http://user:pw@hc.example:8000/ping/abc/fail?x=1"
        );
        assert!(!format!("{t:?}").contains("abc"));
        let bare = Target::parse("http://hc.example").unwrap();
        assert_eq!(
            bare.with_suffix("/start").uri.to_string(),
            "http://hc.example/start"
        );
    }
}
