//! The AWS SDK settings every client of the project shares — explicit timeouts (SDK defaults
//! can hang on a dead endpoint for minutes) and standard retries — and the environment a
//! publisher reads: on Lambda, region and credentials are environment variables, so no
//! credential-provider chain is linked (that is what keeps this crate small).

use std::time::Duration;

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

/// The function publishers invoke.
pub const BROADCASTER_FUNCTION_NAME: &str = "BROADCASTER_FUNCTION_NAME";

/// Timeouts of every SDK call: 2 s to connect, 3 s per attempt, 10 s in all.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(10))
        .build()
}

/// Standard retries, three attempts.
pub fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// What every Lambda client here has: the project's HTTP client and timeouts.
fn lambda_config() -> aws_sdk_lambda::config::Builder {
    aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(crate::http::client())
        .timeout_config(timeouts())
}

/// A variable's value; empty counts as unset.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The region Lambda sets: `AWS_REGION` (or `AWS_DEFAULT_REGION`).
pub fn env_region() -> Option<Region> {
    env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .map(Region::new)
}

/// The credentials Lambda sets for the function's role: `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
pub fn env_credentials() -> Option<Credentials> {
    let (key, secret) = (env("AWS_ACCESS_KEY_ID")?, env("AWS_SECRET_ACCESS_KEY")?);
    Some(Credentials::new(
        key,
        secret,
        env("AWS_SESSION_TOKEN"),
        None,
        "environment",
    ))
}

/// A Lambda client from [`env_region`], [`env_credentials`] and `AWS_ENDPOINT_URL_LAMBDA` (or
/// `AWS_ENDPOINT_URL`; the dev server, for example). Elsewhere (ECS, EC2 roles), build an
/// `aws_sdk_lambda::Client` from your own `aws-config` and use [`crate::LambdaInvoker::new`].
pub fn lambda_client_from_env() -> aws_sdk_lambda::Client {
    let mut builder = lambda_config().retry_config(retries()).region(env_region());
    if let Some(credentials) = env_credentials() {
        builder = builder.credentials_provider(credentials);
    }
    if let Some(endpoint) = env("AWS_ENDPOINT_URL_LAMBDA").or_else(|| env("AWS_ENDPOINT_URL")) {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_lambda::Client::from_conf(builder.build())
}

/// A Lambda client for a local Invoke API (the dev server): fixed region and credentials,
/// nothing read from the environment, one request per call (a retried request would be a new
/// invocation, and a new event to clients).
pub fn local_lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
    let config = lambda_config()
        .retry_config(RetryConfig::disabled())
        .region(LOCAL_REGION)
        .credentials_provider(local_credentials())
        .endpoint_url(endpoint)
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

/// The region of local endpoints (the dev server ignores it; the SDK needs one to sign).
pub const LOCAL_REGION: Region = Region::from_static("local");

/// Fixed credentials for local endpoints, which check no signature.
pub fn local_credentials() -> Credentials {
    Credentials::new("local", "local", None, None, "devhive-realtime")
}
