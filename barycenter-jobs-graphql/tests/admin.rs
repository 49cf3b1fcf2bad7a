//! The admin service driven with `tower::ServiceExt::oneshot`: the seed queries, the schema,
//! and the HTTP rules (methods, content types, bodies, limits, authorization).

mod common;

use std::time::Duration;

use barycenter_jobs_graphql::{AdminService, Denied, Principal, Role};
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{Full, StreamBody};
use serde_json::json;

const SEED_QUERY: &str = "{\n  availableJobs {\n    name\n    description\n    schedule\n  }\n}";
const SEED_MUTATION: &str = "mutation {\n  triggerJob(jobName: \"cleanup_expired_sessions\") {\n    success\n    message\n    jobName\n  }\n}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_query_lists_the_four_jobs() {
    let f = Fixture::seed_only().await;
    let svc = f.service();
    let answer = send(svc.clone(), post_query(SEED_QUERY)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(
        answer.json(),
        json!({ "data": { "availableJobs": seed_available_jobs() } })
    );
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_mutation_triggers_a_run() {
    let f = Fixture::seed_only().await;
    let svc = f.service();
    let data = query_data(&svc, SEED_MUTATION).await;
    assert_eq!(
        data,
        json!({ "triggerJob": {
            "success": true,
            "message": "Job cleanup_expired_sessions triggered",
            "jobName": "cleanup_expired_sessions",
        }})
    );
    // The run was recorded and finishes.
    let mut rows = Vec::new();
    // Up to 30 s (1,200 polls), a ceiling that only catches a run that never ends.
    for _ in 0..1200 {
        rows = f_rows(&svc, "cleanup_expired_sessions").await;
        if rows.len() == 1 && !rows[0]["success"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["success"], json!(true));
    assert_eq!(rows[0]["recordsProcessed"], json!(7));
    assert_eq!(rows[0]["trigger"], json!("manual"));
    f.shutdown().await;
}

async fn f_rows(svc: &AdminService, job: &str) -> Vec<serde_json::Value> {
    let q = format!(
        "{{ jobLogs(jobName: \"{job}\") {{ id jobName startedAt completedAt success errorMessage recordsProcessed status trigger }} }}"
    );
    query_data(svc, &q).await["jobLogs"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn available_jobs_has_the_extra_fields() {
    let f = Fixture::new().await;
    let svc = f.service();
    let data = query_data(
        &svc,
        r#"{ job(name: "cleanup_expired_refresh_tokens") { name schedule scheduleDescription enabled running nextRunAt timeoutSecs lastExecution { id } }
             missing: job(name: "nope") { name } }"#,
    )
    .await;
    assert_eq!(
        data,
        json!({
            "job": {
                "name": "cleanup_expired_refresh_tokens",
                "schedule": "0 30 * * * *",
                "scheduleDescription": "Hourly at :30",
                "enabled": true,
                "running": false,
                "nextRunAt": "2026-01-01T00:30:00Z",
                "timeoutSecs": 3600,
                "lastExecution": null,
            },
            "missing": null,
        })
    );

    let run = f.handle.trigger("failing_job").await.unwrap();
    run.wait().await.unwrap();
    let data = query_data(
        &svc,
        "{ availableJobs { name lastExecution { jobName success errorMessage status } } }",
    )
    .await;
    let jobs = data["availableJobs"].as_array().unwrap();
    let names: Vec<_> = jobs.iter().map(|j| j["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "sorted by name");
    let failing = jobs.iter().find(|j| j["name"] == "failing_job").unwrap();
    assert_eq!(
        failing["lastExecution"],
        json!({ "jobName": "failing_job", "success": false, "errorMessage": "boom", "status": "failed" })
    );
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_logs_reads_rows_written_by_barycenter() {
    let f = Fixture::new().await;
    insert_barycenter_row(&f.db.db, "ok").await;
    insert_barycenter_row(&f.db.db, "failed").await;
    insert_barycenter_row(&f.db.db, "other").await;
    let svc = f.service();

    let all = r#"{ jobLogs(jobName: "cleanup_expired_sessions") {
        id jobName startedAt completedAt success errorMessage recordsProcessed
        status trigger instance durationMs scheduledFor } }"#;
    let data = query_data(&svc, all).await;
    let rows = data["jobLogs"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    // Newest first; ids are IDs (strings).
    assert!(rows[0]["id"].is_string());
    assert_eq!(
        rows[0],
        json!({
            "id": rows[0]["id"], "jobName": "cleanup_expired_sessions",
            "startedAt": "2026-01-01T01:00:00Z", "completedAt": "2026-01-01T01:00:03Z",
            "success": false, "errorMessage": "disk full", "recordsProcessed": null,
            "status": "failed", "trigger": null, "instance": null, "durationMs": null,
            "scheduledFor": null,
        })
    );
    assert_eq!(
        rows[1],
        json!({
            "id": rows[1]["id"], "jobName": "cleanup_expired_sessions",
            "startedAt": "2026-01-01T00:00:00Z", "completedAt": "2026-01-01T00:00:01Z",
            "success": true, "errorMessage": null, "recordsProcessed": 42,
            "status": "succeeded", "trigger": null, "instance": null, "durationMs": null,
            "scheduledFor": null,
        })
    );
    let newer: i64 = rows[0]["id"].as_str().unwrap().parse().unwrap();
    let older: i64 = rows[1]["id"].as_str().unwrap().parse().unwrap();
    assert!(newer > older);

    // Every job, default limit, newest first.
    let data = query_data(&svc, "{ jobLogs { jobName } }").await;
    assert_eq!(
        data["jobLogs"],
        json!([
            { "jobName": "cleanup_expired_challenges" },
            { "jobName": "cleanup_expired_sessions" },
            { "jobName": "cleanup_expired_sessions" },
        ])
    );
    // Failures only, and a limit.
    let data = query_data(
        &svc,
        "{ f: jobLogs(onlyFailures: true) { errorMessage } l: jobLogs(limit: 1) { jobName } }",
    )
    .await;
    assert_eq!(data["f"], json!([{ "errorMessage": "disk full" }]));
    assert_eq!(
        data["l"],
        json!([{ "jobName": "cleanup_expired_challenges" }])
    );

    // One run by id; absent ids are null; non-numeric ids are an error that says so.
    let q = format!("{{ jobExecution(id: \"{older}\") {{ recordsProcessed success }} }}");
    assert_eq!(
        query_data(&svc, &q).await,
        json!({ "jobExecution": { "recordsProcessed": 42, "success": true } })
    );
    assert_eq!(
        query_data(&svc, "{ jobExecution(id: 999999) { id } }").await,
        json!({ "jobExecution": null })
    );
    let answer = send(
        svc.clone(),
        post_query(r#"{ jobExecution(id: "abc") { id } }"#),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.error(),
        r#"invalid execution id "abc": expected a decimal integer"#
    );
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_logs_limit_is_bounded() {
    let f = Fixture::new().await;
    let svc = f.service();
    for bad in ["0", "-1", "1001", "-2147483648"] {
        let q = format!("{{ jobLogs(limit: {bad}) {{ id }} }}");
        let answer = send(svc.clone(), post_query(&q)).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.json()["data"], json!(null));
        assert_eq!(
            answer.error(),
            format!("limit must be between 1 and 1000, got {bad}")
        );
    }
    // Beyond 32 bits is refused by GraphQL's Int itself.
    let answer = send(
        svc.clone(),
        post_query("{ jobLogs(limit: 99999999999) { id } }"),
    )
    .await;
    assert!(answer.error().contains("Int"), "{}", answer.text());
    // The bounds themselves are fine, also through variables.
    for good in [1, 1000] {
        let body = json!({
            "query": "query($n: Int!) { jobLogs(limit: $n) { id } }",
            "variables": { "n": good },
        });
        let answer = send(svc.clone(), post(body.to_string())).await;
        assert_eq!(answer.json(), json!({ "data": { "jobLogs": [] } }));
    }
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_job_refusals() {
    let f = Fixture::new().await;
    let svc = f.service();
    let data1 = query_data(
        &svc,
        r#"mutation { triggerJob(jobName: "no_such_job") { success message jobName executionId } }"#,
    )
    .await;
    assert_eq!(
        data1,
        json!({ "triggerJob": {
            "success": false, "message": "Unknown job: no_such_job",
            "jobName": "no_such_job", "executionId": null,
        }})
    );

    // gated_job holds until released, so it is deterministically running.
    let started = f.started.notified();
    let first = query_data(
        &svc,
        r#"mutation { triggerJob(jobName: "gated_job") { success message executionId } }"#,
    )
    .await;
    assert_eq!(first["triggerJob"]["success"], json!(true));
    let id = first["triggerJob"]["executionId"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::timeout(Duration::from_secs(10), started)
        .await
        .expect("gated_job started");

    let running = query_data(
        &svc,
        &format!(
            r#"{{ job(name: "gated_job") {{ running }} jobExecution(id: "{id}") {{ status success completedAt }} }}"#
        ),
    )
    .await;
    assert_eq!(
        running,
        json!({ "job": { "running": true },
                "jobExecution": { "status": "running", "success": null, "completedAt": null } })
    );

    let second = query_data(
        &svc,
        r#"mutation { triggerJob(jobName: "gated_job") { success message jobName executionId } }"#,
    )
    .await;
    assert_eq!(
        second,
        json!({ "triggerJob": {
            "success": false, "message": "job gated_job is already running",
            "jobName": "gated_job", "executionId": null,
        }})
    );

    f.release.add_permits(1);
    let q = format!(r#"{{ jobExecution(id: "{id}") {{ status recordsProcessed }} }}"#);
    let mut last = json!(null);
    // Up to 30 s (1,200 polls), a ceiling that only catches a run that never ends.
    for _ in 0..1200 {
        last = query_data(&svc, &q).await;
        if last["jobExecution"]["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        last,
        json!({ "jobExecution": { "status": "succeeded", "recordsProcessed": 1 } })
    );
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_errors_are_generic() {
    let f = Fixture::new().await;
    let svc = f.service();
    f.handle.shutdown(Duration::from_secs(5)).await.unwrap();
    f.db.db.close().await;
    for q in [
        "{ jobLogs { id } }",
        "{ jobExecution(id: 1) { id } }",
        "{ availableJobs { lastExecution { id } } }",
    ] {
        let answer = send(svc.clone(), post_query(q)).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.error(), "internal error", "{q}");
        let text = answer.text().to_lowercase();
        for leak in ["sqlite", "pool", "sql", "database", ".db"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_queries_and_post_batches() {
    let f = Fixture::seed_only().await;
    let svc = f.service();

    let answer = send(
        svc.clone(),
        get_query("{ availableJobs { name description schedule } }"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({ "data": { "availableJobs": seed_available_jobs() } })
    );

    // Variables and operationName in the query string.
    let uri = format!(
        "/admin/jobs?query={}&variables={}&operationName=One",
        urlencode(
            "query One($n: String!) { job(name: $n) { schedule } } query Two { jobLogs { id } }"
        ),
        urlencode(r#"{"n":"cleanup_expired_challenges"}"#),
    );
    let answer = send(
        svc.clone(),
        Request::get(uri).body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(
        answer.json(),
        json!({ "data": { "job": { "schedule": "0 */5 * * * *" } } })
    );

    // Batches over POST.
    let body = json!([
        { "query": "{ availableJobs { name } }" },
        { "query": "{ jobLogs(limit: 1) { id } }" },
        { "query": "{ jobLogs(limit: 0) { id } }" },
    ]);
    let answer = send(svc.clone(), post(body.to_string())).await;
    assert_eq!(answer.status, StatusCode::OK);
    let json = answer.json();
    let items = json.as_array().expect("a batch answers with an array");
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0]["data"]["availableJobs"].as_array().unwrap().len(),
        4
    );
    assert_eq!(items[1], json!({ "data": { "jobLogs": [] } }));
    assert_eq!(
        items[2]["errors"][0]["message"],
        "limit must be between 1 and 1000, got 0"
    );

    // A client that asks for the GraphQL response type gets it.
    let mut req = post_query("{ availableJobs { name } }");
    req.headers_mut().insert(
        "accept",
        "application/graphql-response+json, application/json"
            .parse()
            .unwrap(),
    );
    let answer = send(svc.clone(), req).await;
    assert_eq!(
        answer.header("content-type"),
        Some("application/graphql-response+json")
    );

    // Too large a batch, an empty batch.
    let big: Vec<_> = (0..17)
        .map(|_| json!({ "query": "{ availableJobs { name } }" }))
        .collect();
    let answer = send(svc.clone(), post(serde_json::to_string(&big).unwrap())).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.error(),
        "batch of 17 operations is larger than the limit of 16"
    );
    let answer = send(svc.clone(), post("[]")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error(), "empty batch");

    // GET without a query.
    let answer = send(
        svc.clone(),
        Request::get("/admin/jobs").body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error(), "missing `query` parameter");
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_are_never_run_over_get() {
    let f = Fixture::seed_only().await;
    let svc = f.service();
    for q in [
        r#"mutation { triggerJob(jobName: "cleanup_expired_sessions") { success } }"#,
        // Even when the operation selected is a query, a document holding a mutation is refused.
        r#"query A { availableJobs { name } } mutation B { triggerJob(jobName: "cleanup_expired_sessions") { success } }"#,
    ] {
        let answer = send(svc.clone(), get_query(q)).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{q}");
        assert_eq!(answer.header("allow"), Some("POST"));
        assert_eq!(
            answer.error(),
            "mutations are only accepted over POST with a JSON body"
        );
    }
    let logs = query_data(&svc, "{ jobLogs { id } }").await;
    assert_eq!(logs, json!({ "jobLogs": [] }), "nothing was triggered");
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_json_requests_are_refused() {
    let f = Fixture::seed_only().await;
    let svc = f.service();
    let mutation =
        r#"{"query":"mutation { triggerJob(jobName: \"cleanup_expired_sessions\") { success } }"}"#;

    // What a cross-site HTML form can send: urlencoded, multipart, text/plain.
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        None,
    ] {
        let mut req = Request::post("/admin/jobs");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let body = if content_type == Some("application/x-www-form-urlencoded") {
            format!("query={}", urlencode(mutation))
        } else {
            mutation.to_owned()
        };
        let answer = send(svc.clone(), req.body(Full::new(Bytes::from(body))).unwrap()).await;
        assert_eq!(
            answer.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(
            answer.error(),
            "unsupported content type: send the request as application/json"
        );
    }

    // Malformed JSON: 400 with a GraphQL error body.
    for body in [r#"{"query": "#, "not json", r#"{"query": 5}"#, "", "[1, 2]"] {
        let answer = send(svc.clone(), post(body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let message = answer.error();
        assert!(
            message.starts_with("invalid GraphQL request body: "),
            "{message}"
        );
    }

    // application/json with a charset parameter is JSON.
    let req = Request::post("/admin/jobs")
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(Full::new(Bytes::from(
            r#"{"query":"{ availableJobs { name } }"}"#,
        )))
        .unwrap();
    assert_eq!(send(svc.clone(), req).await.status, StatusCode::OK);

    let logs = query_data(&svc, "{ jobLogs { id } }").await;
    assert_eq!(logs, json!({ "jobLogs": [] }), "nothing was triggered");
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let f = Fixture::seed_only().await;
    let svc = f.service();
    let padding = " ".repeat(1024 * 1024);
    let body = format!(r#"{{"query": "{{ availableJobs {{ name }} }}"}}{padding}"#);

    // Declared with Content-Length.
    let mut req = post(body.clone());
    req.headers_mut()
        .insert("content-length", body.len().to_string().parse().unwrap());
    let answer = send(svc.clone(), req).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.error(), "request body larger than 1048576 bytes");

    // Streamed without a length, from a body type of our own (any `http_body::Body` will do).
    let chunks: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = body
        .as_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let streamed = Request::post("/admin/jobs")
        .header("content-type", "application/json")
        .body(StreamBody::new(futures_util::stream::iter(chunks)))
        .unwrap();
    let res = tower::ServiceExt::oneshot(svc.clone(), local(streamed))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A body that fails while being read is a 400, not a 500.
    let failing: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> =
        vec![Err(std::io::Error::other("connection reset"))];
    let req = Request::post("/admin/jobs")
        .header("content-type", "application/json")
        .body(StreamBody::new(futures_util::stream::iter(failing)))
        .unwrap();
    let res = tower::ServiceExt::oneshot(svc.clone(), local(req))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Just under the limit is fine; a smaller configured limit applies.
    let fits = format!(
        r#"{{"query": "{{ availableJobs {{ name }} }}"}}{}"#,
        " ".repeat(1024 * 1024 - 64)
    );
    assert_eq!(send(svc.clone(), post(fits)).await.status, StatusCode::OK);
    let small = f.builder().body_limit(16).build();
    let answer = send(small, post_query("{ availableJobs { name } }")).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    f.shutdown().await;
}

/// The introspection query GraphiQL sends (graphql-js `getIntrospectionQuery()`).
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_and_complexity_are_limited() {
    let f = Fixture::seed_only().await;
    let svc = f.service();

    // GraphiQL's own introspection query passes the default limits...
    let answer = send(svc.clone(), post_query(INTROSPECTION)).await;
    let json = answer.json();
    assert!(json.get("errors").is_none(), "{json}");
    assert!(json["data"]["__schema"]["types"].as_array().unwrap().len() > 5);

    // ...a deeper one does not.
    let mut deep = String::from("kind");
    for _ in 0..20 {
        deep = format!("ofType {{ {deep} }}");
    }
    let deep = format!("{{ __schema {{ types {{ fields {{ type {{ {deep} }} }} }} }} }}");
    let answer = send(svc.clone(), post_query(&deep)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["data"], json!(null));
    assert!(
        answer.error().contains("nested too deep"),
        "{}",
        answer.text()
    );

    // Complexity: many aliased fields.
    let wide: String = (0..600)
        .map(|i| format!("a{i}: availableJobs {{ name }} "))
        .collect();
    let answer = send(svc.clone(), post_query(&format!("{{ {wide} }}"))).await;
    assert!(answer.error().contains("too complex"), "{}", answer.text());

    // That query needs a depth of exactly 14 (async-graphql counts the root), which the default (16) leaves room for.
    let answer = send(
        f.builder().limit_depth(Some(14)).build(),
        post_query(INTROSPECTION),
    )
    .await;
    assert!(answer.json().get("errors").is_none(), "{}", answer.text());
    let answer = send(
        f.builder().limit_depth(Some(13)).build(),
        post_query(INTROSPECTION),
    )
    .await;
    assert!(answer.error().contains("nested too deep"));

    // Both can be set by the host.
    let tight = f.builder().limit_depth(Some(2)).build();
    let answer = send(
        tight,
        post_query("{ availableJobs { lastExecution { id } } }"),
    )
    .await;
    assert!(answer.error().contains("nested too deep"));
    let tight = f.builder().limit_complexity(Some(3)).build();
    let answer = send(
        tight,
        post_query("{ availableJobs { name description schedule } }"),
    )
    .await;
    assert!(answer.error().contains("too complex"));
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_can_be_turned_off() {
    let f = Fixture::seed_only().await;
    let svc = f.builder().disable_introspection().build();
    // async-graphql answers introspection fields with null when it is off.
    let answer = send(
        svc.clone(),
        post_query(r#"{ __schema { queryType { name } } __type(name: "Job") { name } }"#),
    )
    .await;
    assert_eq!(
        answer.json()["data"],
        json!({ "__schema": null, "__type": null }),
        "{}",
        answer.text()
    );
    let answer = send(svc.clone(), post_query(INTROSPECTION)).await;
    assert!(!answer.text().contains("JobExecution"), "{}", answer.text());
    let answer = send(svc.clone(), post_query("{ availableJob { name } }")).await;
    assert!(
        !answer.text().contains("availableJobs"),
        "no suggestions: {}",
        answer.text()
    );
    assert_eq!(
        query_data(&svc, "{ availableJobs { name description schedule } }").await,
        json!({ "availableJobs": seed_available_jobs() })
    );
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_required_when_set() {
    let f = Fixture::seed_only().await;
    let svc = f
        .builder()
        .bearer_token("t0ken-with-some-length")
        .graphiql_from_cdn()
        .build();
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer t0ken-with-some-lengtH"),
        Some("Bearer t0ken-with-some-length-and-more"),
        Some("Basic dDBrZW4="),
        Some("t0ken-with-some-length"),
    ] {
        let mut req = post_query(SEED_QUERY);
        if let Some(a) = auth {
            req.headers_mut()
                .insert("authorization", a.parse().unwrap());
        }
        let answer = send(svc.clone(), req).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        assert_eq!(
            answer.json(),
            json!({ "errors": [{ "message": "unauthorized" }] })
        );
    }
    // Refused before anything is parsed or run: a GET mutation also gets 401.
    let answer = send(
        svc.clone(),
        get_query(r#"mutation { triggerJob(jobName: "cleanup_expired_sessions") { success } }"#),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);

    for auth in [
        "Bearer t0ken-with-some-length",
        "bearer t0ken-with-some-length",
    ] {
        let mut req = post_query(SEED_QUERY);
        req.headers_mut()
            .insert("authorization", auth.parse().unwrap());
        let answer = send(svc.clone(), req).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.json(),
            json!({ "data": { "availableJobs": seed_available_jobs() } })
        );
    }
    // The GraphiQL page is static and served without credentials.
    let page = Request::get("/admin/jobs/playground")
        .body(Full::default())
        .unwrap();
    assert_eq!(send(svc.clone(), page).await.status, StatusCode::OK);
    f.shutdown().await;
}

#[derive(Clone)]
struct Operator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_check_composes_with_a_tower_layer() {
    let f = Fixture::seed_only().await;
    // The host's check reads an extension that an outer tower layer sets from its own
    // authentication (here: a header standing in for a verified session).
    let svc = f
        .builder()
        .authorize(|parts| match parts.extensions.get::<Operator>() {
            Some(_) => Ok(Principal::new("operator", Role::Operate)),
            None => Err(Denied::Unauthenticated),
        })
        .build();
    let stack = tower::ServiceBuilder::new()
        .map_request(|mut req: Request<Full<Bytes>>| {
            if req.headers().get("x-session").is_some_and(|v| v == "valid") {
                req.extensions_mut().insert(Operator);
            }
            req
        })
        .service(svc);

    let answer = send(stack.clone(), post_query(SEED_QUERY)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));

    let mut req = post_query(SEED_QUERY);
    req.headers_mut()
        .insert("x-session", "valid".parse().unwrap());
    let answer = send(stack.clone(), req).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({ "data": { "availableJobs": seed_available_jobs() } })
    );
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_methods_and_the_playground() {
    let f = Fixture::seed_only().await;
    let svc = f.builder().graphiql_from_cdn().build();

    let page = send(
        svc.clone(),
        Request::get("/admin/jobs/playground")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    assert!(html.to_lowercase().contains("graphiql"));
    assert!(
        html.contains("createUrl('/admin/jobs')"),
        "posts to the mount path"
    );

    let post_page = send(
        svc.clone(),
        Request::post("/admin/jobs/playground")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(post_page.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post_page.header("allow"), Some("GET"));

    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
        let req = Request::builder()
            .method(method)
            .uri("/admin/jobs")
            .body(Full::default())
            .unwrap();
        let answer = send(svc.clone(), req).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(answer.header("allow"), Some("GET, POST"));
        assert_eq!(answer.error(), "method not allowed");
    }

    for path in ["/admin/jobs/other", "/elsewhere", "/admin/jobsx"] {
        let answer = send(
            svc.clone(),
            Request::get(path).body(Full::default()).unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.error(), "not found");
    }

    // The trailing slash and the stripped form (what a nesting router hands over) both work.
    for path in ["/admin/jobs/", "/"] {
        let mut req = post_query("{ availableJobs { name } }");
        *req.uri_mut() = path.parse().unwrap();
        assert_eq!(
            send(svc.clone(), req).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    let stripped = Request::get("/playground").body(Full::default()).unwrap();
    assert_eq!(send(svc.clone(), stripped).await.status, StatusCode::OK);

    // Custom paths; no playground.
    let custom = f
        .builder()
        .mount_path("/ops/graphql/")
        .playground_path("ide")
        .graphiql_from_cdn()
        .build();
    let page = send(
        custom.clone(),
        Request::get("/ops/graphql/ide")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("createUrl('/ops/graphql')"));
    let mut req = post_query("{ availableJobs { name } }");
    *req.uri_mut() = "/ops/graphql".parse().unwrap();
    assert_eq!(send(custom.clone(), req).await.status, StatusCode::OK);

    let none = f.builder().disable_playground().build();
    let answer = send(
        none,
        Request::get("/admin/jobs/playground")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    f.shutdown().await;
}

async fn job_logs_on_postgres() {
    let db = barycenter_jobs_test_support::postgres().await;
    let f = Fixture::on(db, true).await;
    insert_barycenter_row(&f.db.db, "ok").await;
    insert_barycenter_row(&f.db.db, "failed").await;
    let svc = f.service();
    let run = f.handle.trigger("failing_job").await.unwrap();
    run.wait().await.unwrap();

    let data = query_data(
        &svc,
        r#"{ s: jobLogs(jobName: "cleanup_expired_sessions") { jobName startedAt completedAt success errorMessage recordsProcessed status trigger }
             f: jobLogs(onlyFailures: true, limit: 10) { jobName errorMessage trigger } }"#,
    )
    .await;
    assert_eq!(
        data["s"],
        json!([
            { "jobName": "cleanup_expired_sessions", "startedAt": "2026-01-01T01:00:00Z",
              "completedAt": "2026-01-01T01:00:03Z", "success": false, "errorMessage": "disk full",
              "recordsProcessed": null, "status": "failed", "trigger": null },
            { "jobName": "cleanup_expired_sessions", "startedAt": "2026-01-01T00:00:00Z",
              "completedAt": "2026-01-01T00:00:01Z", "success": true, "errorMessage": null,
              "recordsProcessed": 42, "status": "succeeded", "trigger": null },
        ])
    );
    assert_eq!(
        data["f"],
        json!([
            { "jobName": "failing_job", "errorMessage": "boom", "trigger": "manual" },
            { "jobName": "cleanup_expired_sessions", "errorMessage": "disk full", "trigger": null },
        ])
    );
    f.shutdown().await;
}
barycenter_jobs_test_support::server_test!(postgres, job_logs_on_postgres);
