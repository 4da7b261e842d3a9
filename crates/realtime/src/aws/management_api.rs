//! The `ConnectionSender` adapter for AWS: `PostToConnection` and `DeleteConnection` on the API
//! Gateway Management API, with each outcome classified once (410 gone, 429/5xx/timeouts retry, the rest failed)
//! so that fan-out never has to read an SDK error.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::error::{DisplayErrorContext, SdkError};
use aws_sdk_apigatewaymanagement::primitives::Blob;

use crate::delivery::sender::{ConnectionSender, PostOutcome};
use crate::settings::{ConfigError, Env, required};

/// The Management API's base URL: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
pub const WEBSOCKET_ENDPOINT: &str = "WEBSOCKET_ENDPOINT";

/// The sender's settings: `WEBSOCKET_ENDPOINT` (required, an http(s) URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub endpoint: String,
}

impl crate::settings::Settings for Settings {
    const VARIABLES: &'static [&'static str] = &[WEBSOCKET_ENDPOINT];

    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        let url = required(
            env,
            WEBSOCKET_ENDPOINT,
            "the API Gateway Management API URL, https://{api}.execute-api.{region}.amazonaws.com/{stage}",
        )?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError(format!(
                "{WEBSOCKET_ENDPOINT} must be an http(s) URL, not {url:?}"
            )));
        }
        Ok(Settings {
            endpoint: url.to_owned(),
        })
    }
}

/// `PostToConnection` through the AWS SDK.
pub struct ManagementApiSender {
    client: Client,
}

impl ManagementApiSender {
    pub fn new(client: Client) -> Self {
        ManagementApiSender { client }
    }

    /// A client for the API at `endpoint` (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    /// SDK retries are off: fan-out retries with its own jittered backoff within the
    /// invocation's deadline, so a post is one HTTP request here.
    pub fn for_endpoint(sdk: &aws_types::SdkConfig, endpoint: &str) -> Self {
        Self::from_builder(
            aws_sdk_apigatewaymanagement::config::Builder::from(sdk),
            endpoint,
        )
    }

    /// A client for a local Management API (the dev server): fixed region and credentials,
    /// nothing read from the environment.
    pub fn local(endpoint: &str) -> Self {
        use aws_sdk_apigatewaymanagement::config::BehaviorVersion;
        use realtime_client::sdk::{LOCAL_REGION, local_credentials};
        let builder = aws_sdk_apigatewaymanagement::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .http_client(realtime_client::http::client())
            .region(LOCAL_REGION)
            .credentials_provider(local_credentials());
        Self::from_builder(builder, endpoint)
    }

    fn from_builder(
        builder: aws_sdk_apigatewaymanagement::config::Builder,
        endpoint: &str,
    ) -> Self {
        let config = builder
            .endpoint_url(endpoint)
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .timeout_config(
                aws_smithy_types::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(3))
                    .operation_timeout(Duration::from_secs(3))
                    .build(),
            )
            .build();
        Self::new(Client::from_conf(config))
    }
}

#[async_trait]
impl ConnectionSender for ManagementApiSender {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> PostOutcome {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(payload))
            .send()
            .await;
        classify(result.map(|_| ()), |e| {
            (e.is_gone_exception(), e.is_limit_exceeded_exception())
        })
    }

    async fn close(&self, connection_id: &str) -> PostOutcome {
        let result = self
            .client
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await;
        match classify(result.map(|_| ()), |e| {
            (e.is_gone_exception(), e.is_limit_exceeded_exception())
        }) {
            PostOutcome::Delivered => PostOutcome::Closed,
            other => other,
        }
    }
}

/// One Management API answer as a [`PostOutcome`]; `kind` tells (gone, throttled) apart.
fn classify<E>(
    result: Result<(), SdkError<E, HttpResponse>>,
    kind: impl Fn(&E) -> (bool, bool),
) -> PostOutcome
where
    E: std::error::Error + 'static,
{
    match result {
        Ok(()) => PostOutcome::Delivered,
        Err(SdkError::ServiceError(e)) => {
            let status = e.raw().status().as_u16();
            let (gone, throttled) = kind(e.err());
            if gone || status == 410 {
                PostOutcome::Gone
            } else if throttled || status == 429 {
                PostOutcome::Throttled
            } else if status >= 500 {
                PostOutcome::Retry(format!("HTTP {status}"))
            } else {
                PostOutcome::Failed(format!("HTTP {status}: {}", DisplayErrorContext(e.err())))
            }
        }
        Err(
            e @ (SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_)),
        ) => PostOutcome::Retry(DisplayErrorContext(&e).to_string()),
        Err(e) => PostOutcome::Failed(DisplayErrorContext(&e).to_string()),
    }
}
