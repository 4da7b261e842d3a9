//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`) for the
//! broadcaster, run in-process by the broadcaster's Lambda handler
//! (`realtime::runtime::handlers::Broadcaster`). The relay invokes through it too, as on AWS. HTTP handlers in any language point `AWS_ENDPOINT_URL_LAMBDA` here unchanged:
//! `RequestResponse` returns the result, `Event` answers 202 at once and runs in the
//! background, other function names answer 404 `ResourceNotFoundException`.
//!
//! As on AWS, a request must be signed: an `Authorization` header shaped like Signature Version
//! 4 for `lambda` (any key; the SDKs sign with whatever credentials they have), and a body that
//! is not of a content type a web page could send cross-origin without a preflight (the SDKs
//! send `application/octet-stream`, boto3 none). Otherwise any page the developer visits could
//! invoke the broadcaster (`crate::guard`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use realtime::lambda_runtime::{Context, LambdaEvent};

use crate::management::aws_error;
use crate::state::App;

/// How long an in-process invocation may run (the broadcaster's Lambda timeout).
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(30);
/// The event Lambda would hand the broadcaster for an invocation starting now: its request
/// id, and the deadline its timeout gives.
fn invocation(payload: Value, request_id: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    context.deadline =
        realtime::time::EpochMs::now().0 as u64 + INVOCATION_TIMEOUT.as_millis() as u64;
    LambdaEvent::new(payload, context)
}

/// `broadcaster`, `broadcaster:$LATEST`, or `arn:aws:lambda:…:function:broadcaster[:qualifier]`.
pub fn function_name(name: &str) -> &str {
    let name = name.split_once(":function:").map_or(name, |(_, rest)| rest);
    name.split(':').next().unwrap_or(name)
}

/// `POST /2015-03-31/functions/{name}/invocations`: Lambda's `Invoke` for the broadcaster,
/// `Event` (queued, 202), `RequestResponse` (run now, its result) or `DryRun` (204).
pub async fn invoke(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let payload = match admit(&app, &name, &headers, &body) {
        Ok(payload) => payload,
        Err(refused) => return *refused,
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    match invocation_type {
        "Event" => queue(app, payload, request_id, body.len()),
        "DryRun" => StatusCode::NO_CONTENT.into_response(),
        _ => run(&app, payload, &request_id).await,
    }
}

/// The payload of an invocation this API accepts: signed as the SDKs sign, not of a content
/// type a web page may send cross-origin, for the broadcaster, and JSON.
fn admit(app: &App, name: &str, headers: &HeaderMap, body: &Bytes) -> Result<Value, Box<Response>> {
    if let Err(why) = crate::guard::sigv4(headers, "lambda") {
        return Err(Box::new(aws_error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            &format!("the dev server's Invoke API refuses this request: {why}"),
        )));
    }
    if let Some(simple) = crate::guard::simple_content_type(headers) {
        return Err(Box::new(aws_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaTypeException",
            &format!(
                "Content-Type {simple} is refused (web pages may send it cross-origin): send the \
                 payload as application/json or application/octet-stream, as the AWS SDKs do"
            ),
        )));
    }
    if function_name(name) != app.broadcaster_name {
        return Err(Box::new(aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {name}"),
        )));
    }
    serde_json::from_slice(if body.is_empty() { b"{}" } else { body }).map_err(|e| {
        Box::new(aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            &format!("Could not parse request body into json: {e}"),
        ))
    })
}

/// An `Event` invocation: accepted into the bounded queue (429 when it is full) and run in the
/// background, as Lambda's asynchronous invocations are.
fn queue(app: Arc<App>, payload: Value, request_id: String, bytes: usize) -> Response {
    let Some(place) = app.invoke_queue.enter(bytes) else {
        tracing::warn!(
            pending = app.invoke_queue.pending(),
            "Invoke queue full: 429 TooManyRequestsException"
        );
        return aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            "Rate Exceeded. (the dev server's queue of asynchronous invocations is full: --invoke-queue, --invoke-queue-mb)",
        );
    };
    tokio::spawn(async move {
        // Held until this invocation has run.
        let _place = place;
        let accepted = tokio::time::Instant::now();
        let faults = &app.gateway.faults;
        tokio::time::sleep(faults.invoke_delay()).await;
        let deliveries = if faults.invoke_twice() { 2 } else { 1 };
        for _ in 0..deliveries {
            deliver(&app, &payload, &request_id, accepted).await;
        }
    });
    StatusCode::ACCEPTED.into_response()
}

/// Attempts of an asynchronous invocation: the first and Lambda's two retries.
const ATTEMPTS: u32 = 3;

/// One delivery of an asynchronous invocation, as Lambda makes it: queued (at most
/// `INVOKE_CONCURRENCY` run at once, each with its own timeout from the moment it starts), a
/// failed attempt retried after `--invoke-retry-ms` and twice that, then dead-lettered; an
/// event older than `--invoke-max-age-s` is dead-lettered instead of run.
async fn deliver(app: &App, payload: &Value, request_id: &str, accepted: tokio::time::Instant) {
    let options = &app.options;
    let max_age = Duration::from_secs(options.invoke_max_age_s);
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            let wait = options.invoke_retry_ms * u64::from(attempt);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        if accepted.elapsed() > max_age {
            return app
                .invoke_queue
                .dead_letter(request_id, "older than --invoke-max-age-s");
        }
        let Ok(_slot) = app.invocations.acquire().await else {
            return;
        };
        let failed = if app.gateway.faults.invoke_fails() {
            Some("injected function error".to_owned())
        } else {
            let run = app
                .handlers
                .broadcaster
                .handle(invocation(payload.clone(), request_id));
            run.await.err().map(|e| e.to_string())
        };
        let Some(error) = failed else {
            return;
        };
        tracing::warn!(request_id, attempt = attempt + 1, %error, "asynchronous invocation failed");
    }
    app.invoke_queue.dead_letter(request_id, "failed 3 times");
}

/// A `RequestResponse` invocation: run now, answered with its result (a failure as Lambda
/// reports one, `X-Amz-Function-Error: Unhandled`).
async fn run(app: &App, payload: Value, request_id: &str) -> Response {
    let (error, body) = match app
        .handlers
        .broadcaster
        .handle(invocation(payload, request_id))
        .await
    {
        Ok(result) => (None, result),
        Err(e) => (
            Some("Unhandled"),
            json!({ "errorType": "StoreError", "errorMessage": e.to_string() }),
        ),
    };
    let mut response = (
        StatusCode::OK,
        [
            ("content-type", "application/json"),
            ("x-amz-executed-version", "$LATEST"),
        ],
        body.to_string(),
    )
        .into_response();
    if let Some(error) = error {
        response.headers_mut().insert(
            "x-amz-function-error",
            error.parse().expect("static header value"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn names_arns_and_qualifiers_resolve_to_the_function() {
        assert_eq!(function_name("broadcaster"), "broadcaster");
        assert_eq!(function_name("broadcaster:$LATEST"), "broadcaster");
        assert_eq!(
            function_name("arn:aws:lambda:eu-west-1:123456789012:function:broadcaster"),
            "broadcaster"
        );
        assert_eq!(
            function_name("arn:aws:lambda:eu-west-1:123456789012:function:broadcaster:live"),
            "broadcaster"
        );
    }
}
