//! Unit tests of the GraphQL core on its own (no authorization in front: the principal is
//! whatever the test puts in the extensions), over a scheduler on a temporary SQLite file.

use barycenter_jobs_core::{Database, Registry, Scheduler, SchedulerHandle};
use http::header::CONTENT_LENGTH;
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt};

use super::*;
use crate::schema::{JobsContext, JobsExtension, ReadShare};
use crate::service::Role;
use crate::service::layer::limit::RequestBodyLimitLayer;

struct Fixture {
    core: GraphQl,
    handle: SchedulerHandle,
    _dir: tempfile::TempDir,
}

/// The core over a scheduler with no jobs, at most `max_mutations` mutations a request.
async fn fixture(max_mutations: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let db = Database::connect(&url).await.unwrap();
    let handle = Scheduler::builder(Registry::builder().build().unwrap(), db)
        .start()
        .await
        .unwrap();
    let context = JobsContext {
        handle: handle.clone(),
        reads: ReadShare::new(1),
    };
    let schema =
        crate::schema::builder_with(context, JobsExtension::max_mutations(max_mutations)).finish();
    Fixture {
        core: GraphQl::new(schema, 2, max_mutations),
        handle,
        _dir: dir,
    }
}

impl Fixture {
    async fn stop(self) {
        self.handle
            .shutdown(std::time::Duration::from_secs(5))
            .await
            .unwrap();
    }
}

/// The status, the named header and the body of `svc`'s answer to `req`.
async fn answer<S>(svc: S, req: HttpRequest<Full<Bytes>>, header: &str) -> (u16, String, String)
where
    S: Service<HttpRequest<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible>,
{
    let res = svc.oneshot(req).await.unwrap();
    let value = res
        .headers()
        .get(header)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, value, String::from_utf8(body.to_vec()).unwrap())
}

fn get(query: &str) -> HttpRequest<Full<Bytes>> {
    HttpRequest::get(format!("/?{query}"))
        .body(Full::default())
        .unwrap()
}

fn post(content_type: &str, body: &'static str) -> HttpRequest<Full<Bytes>> {
    HttpRequest::post("/")
        .header(CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn error(message: &str) -> String {
    serde_json::json!({ "errors": [{ "message": message }] }).to_string()
}

#[test]
fn reads_the_operation_name_of_a_query_string() {
    let q = "query=%7B+x+%7D&operationName=One&flag";
    assert_eq!(operation_name(q).as_deref(), Some("One"));
    assert_eq!(
        operation_name("operationName=a+b%20c%7B").as_deref(),
        Some("a b c{")
    );
    assert_eq!(operation_name("operationName=").as_deref(), Some(""));
    assert_eq!(operation_name("operation_name=One&x=1"), None);
    assert_eq!(operation_name(""), None);
}

#[tokio::test]
async fn get_runs_queries_and_refuses_mutations() {
    let f = fixture(10).await;
    let (status, content_type, body) = answer(
        f.core.clone(),
        get("query=%7BavailableJobs%7Bname%7D%7D"),
        "content-type",
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, JSON));
    assert_eq!(body, r#"{"data":{"availableJobs":[]}}"#);

    // The operation the query string names is the one that runs.
    let two = "query=query+A%7BavailableJobs%7Bname%7D%7Dquery+B%7Bviewer%7Brole%7D%7D\
               &operationName=B";
    let (_, _, body) = answer(f.core.clone(), get(two), "").await;
    assert_eq!(body, r#"{"data":{"viewer":null}}"#);

    let mutation = "query=mutation%7BpauseJob(jobName:%22x%22)%7Bsuccess%7D%7D";
    let (status, allow, body) = answer(f.core.clone(), get(mutation), "allow").await;
    assert_eq!((status, allow.as_str()), (405, "POST"));
    assert_eq!(
        body,
        error("mutations are only accepted over POST with a JSON body")
    );

    let (status, _, body) = answer(f.core.clone(), get("variables=%7B%7D"), "").await;
    assert_eq!((status, body), (400, error("missing `query` parameter")));
    f.stop().await;
}

#[tokio::test]
async fn post_takes_json_only_and_bounds_batches_and_mutations() {
    let f = fixture(1).await;
    let (status, _, body) = answer(f.core.clone(), post("text/plain", "{}"), "").await;
    let refused = error("unsupported content type: send the request as application/json");
    assert_eq!((status, body), (415, refused));

    let (status, _, body) = answer(f.core.clone(), post(JSON, "[]"), "").await;
    assert_eq!((status, body), (400, error("empty batch")));
    let three =
        r#"[{"query":"{viewer{role}}"},{"query":"{viewer{role}}"},{"query":"{viewer{role}}"}]"#;
    let (status, _, body) = answer(f.core.clone(), post(JSON, three), "").await;
    let too_many = error("batch of 3 operations is larger than the limit of 2");
    assert_eq!((status, body), (400, too_many));
    let (status, _, body) = answer(f.core.clone(), post(JSON, "nope"), "").await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid GraphQL request body"), "{body}");

    let two = r#"{"query":"mutation{a:pauseJob(jobName:\"x\"){success} b:pauseJob(jobName:\"y\"){success}}"}"#;
    let (status, _, body) = answer(f.core.clone(), post(JSON, two), "").await;
    let over = error("request runs 2 mutations, more than the limit of 1");
    assert_eq!((status, body), (400, over));

    let put = HttpRequest::put("/").body(Full::default()).unwrap();
    let (status, allow, _) = answer(f.core.clone(), put, "allow").await;
    assert_eq!((status, allow.as_str()), (405, "GET, POST"));
    f.stop().await;
}

#[tokio::test]
async fn hands_the_principal_to_the_schema() {
    let f = fixture(10).await;
    let query = r#"{"query":"{viewer{name role}}"}"#;
    let mut req = post(JSON, query);
    req.extensions_mut()
        .insert(Principal::new("alice", Role::Read));
    let accept = "application/graphql-response+json";
    req.headers_mut()
        .insert(ACCEPT, http::HeaderValue::from_static(accept));
    let (status, content_type, body) = answer(f.core.clone(), req, "content-type").await;
    assert_eq!((status, content_type.as_str()), (200, accept));
    assert_eq!(
        body,
        r#"{"data":{"viewer":{"name":"alice","role":"read"}}}"#
    );

    // None attached: a mutation is a GraphQL error, not a panic.
    let mutation = r#"{"query":"mutation{pauseJob(jobName:\"x\"){success}}"}"#;
    let (status, _, body) = answer(f.core.clone(), post(JSON, mutation), "").await;
    assert_eq!(status, 200);
    assert!(body.contains("forbidden: no principal"), "{body}");
    f.stop().await;
}

#[tokio::test]
async fn behind_the_body_limit_answers_413_after_the_content_type() {
    let f = fixture(10).await;
    let limited = RequestBodyLimitLayer::new(16).layer(f.core.clone());
    let large = r#"{"query":"{viewer{role}}"}"#;
    let (status, _, body) = answer(limited.clone(), post(JSON, large), "").await;
    assert_eq!(
        (status, body),
        (413, error("request body larger than 16 bytes"))
    );

    // A declared length over the limit is refused without reading...
    let mut declared = post(JSON, "{}");
    declared
        .headers_mut()
        .insert(CONTENT_LENGTH, http::HeaderValue::from_static("1000"));
    let (status, _, _) = answer(limited.clone(), declared, "").await;
    assert_eq!(status, 413);
    // ... but only once the content type passed, as without the layer.
    let mut form = post("application/x-www-form-urlencoded", "{}");
    form.headers_mut()
        .insert(CONTENT_LENGTH, http::HeaderValue::from_static("1000"));
    let (status, _, _) = answer(limited.clone(), form, "").await;
    assert_eq!(status, 415);
    let (status, allow, _) = answer(
        limited,
        HttpRequest::delete("/").body(Full::default()).unwrap(),
        "allow",
    )
    .await;
    assert_eq!((status, allow.as_str()), (405, "GET, POST"));
    f.stop().await;
}
