//! The AWS SDK settings every client of the project shares — explicit timeouts (SDK defaults
//! can hang on a dead endpoint for minutes) and standard retries — and the environment a
//! publisher reads: on Lambda, region and credentials are environment variables, so no
//! credential-provider chain is linked (that is what keeps this crate small).

use std::time::Duration;

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use aws_types::sdk_config::SharedCredentialsProvider;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

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

/// A variable's value; empty counts as unset.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The region Lambda sets: `AWS_REGION` (or `AWS_DEFAULT_REGION`).
fn env_region() -> Option<Region> {
    env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .map(Region::new)
}

/// The credentials Lambda sets for the function's role: `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
fn env_credentials() -> Option<Credentials> {
    let (key, secret) = (env("AWS_ACCESS_KEY_ID")?, env("AWS_SECRET_ACCESS_KEY")?);
    Some(Credentials::new(
        key,
        secret,
        env("AWS_SESSION_TOKEN"),
        None,
        "environment",
    ))
}

/// SDK configuration as Lambda provides it, shared by the publisher and the functions: region
/// and credentials from the variables Lambda sets for the function's role, `AWS_ENDPOINT_URL`
/// and `AWS_ENDPOINT_URL_<SERVICE>` honoured, the project's HTTP client, [`timeouts`] and
/// [`retries`]. No credential-provider chain (profiles, SSO, STS, instance metadata) is linked:
/// it costs ~0.8 MB a Lambda bootstrap and start-up time a function never uses. Elsewhere (ECS,
/// EC2 roles), build the configuration with `aws-config` instead.
pub fn env_sdk_config() -> SdkConfig {
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(crate::http::client())
        .timeout_config(timeouts())
        .retry_config(retries())
        .region(env_region())
        .service_config(EnvEndpoints);
    if let Some(credentials) = env_credentials() {
        builder = builder.credentials_provider(SharedCredentialsProvider::new(credentials));
    }
    if let Some(endpoint) = env("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    builder.build()
}

/// `AWS_ENDPOINT_URL_<SERVICE>`, the service id as the SDK names it (`DYNAMODB`, `LAMBDA`,
/// `SECRETS_MANAGER`, `APIGATEWAYMANAGEMENTAPI`): DynamoDB Local and the dev server.
#[derive(Debug)]
struct EnvEndpoints;

impl LoadServiceConfig for EnvEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        env(&service_variable(&key))
    }
}

/// The variable of a service setting: `AWS_ENDPOINT_URL` of `Secrets Manager` is
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER` (the SDK's rule: upper case, spaces as underscores).
fn service_variable(key: &ServiceConfigKey<'_>) -> String {
    let service = key.service_id().to_ascii_uppercase().replace(' ', "_");
    format!("{}_{service}", key.env())
}

/// A Lambda client from [`env_sdk_config`] (`AWS_ENDPOINT_URL_LAMBDA` or `AWS_ENDPOINT_URL`
/// reach the dev server, for example). Elsewhere (ECS, EC2 roles), build an
/// `aws_sdk_lambda::Client` from your own `aws-config` and use [`crate::LambdaInvoker::new`].
pub fn lambda_client_from_env() -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&env_sdk_config())
}

/// A Lambda client for a local Invoke API (the dev server): fixed region and credentials,
/// nothing read from the environment, one request per call (a retried request would be a new
/// invocation, and a new event to clients).
pub fn local_lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
    local_lambda_client_with(endpoint, crate::http::client())
}

/// [`local_lambda_client`] with its own HTTP client (one trusting the dev server's CA, say:
/// [`crate::http::client_trusting`]).
pub fn local_lambda_client_with(
    endpoint: &str,
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
) -> aws_sdk_lambda::Client {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_endpoints_are_read_from_the_variables_the_sdk_names() {
        let variable = |service: &str| {
            let key = ServiceConfigKey::builder()
                .service_id(service)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .unwrap();
            service_variable(&key)
        };
        assert_eq!(variable("DynamoDB"), "AWS_ENDPOINT_URL_DYNAMODB");
        assert_eq!(variable("Lambda"), "AWS_ENDPOINT_URL_LAMBDA");
        assert_eq!(
            variable("Secrets Manager"),
            "AWS_ENDPOINT_URL_SECRETS_MANAGER"
        );
        assert_eq!(
            variable("ApiGatewayManagementApi"),
            "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"
        );
    }
}
