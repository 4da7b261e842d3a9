//! The broadcast client HTTP handlers use after each write: one asynchronous Lambda Invoke of
//! the broadcaster (DESIGN "Broadcaster invocation"), never failing the handler's request.
//!
//! ```no_run
//! use realtime::broadcast::{BroadcastClient, EventType};
//! use serde_json::json;
//!
//! # async fn create_message(client: &BroadcastClient, project: uuid::Uuid, sender_conn: &str) {
//! // … the message row was committed …
//! let message = json!({"id": "3f0c…", "content": "hello", "user_id": "…"});
//! if let Err(e) = client.send_excluding(project, EventType::MessageCreated, message, sender_conn).await {
//!     tracing::warn!(error = %e, "broadcast failed; clients will catch up on their next fetch");
//! }
//! # }
//! # async fn setup() {
//! // Built once per process: BROADCASTER_FUNCTION_NAME names the function.
//! let client = BroadcastClient::from_config(&realtime::config::Config::from_env()).await;
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::{Value, json};
use uuid::Uuid;

pub use crate::events::EventType;
use crate::invocation::MAX_INVOCATION_BYTES;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastError {
    #[error("broadcast payload is {0} bytes; the limit is {MAX_INVOCATION_BYTES}")]
    TooLarge(usize),
    #[error("invoking the broadcaster failed: {0}")]
    Invoke(String),
}

/// How to run a function: the `Invoker` port (Lambda `Invoke`; the dev server answers the
/// same API).
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Invoke `function` with `payload`: asynchronously (`Event`, no result) or synchronously
    /// (`RequestResponse`, the function's result).
    async fn invoke(
        &self,
        function: &str,
        payload: Vec<u8>,
        asynchronous: bool,
    ) -> Result<Option<Vec<u8>>, BroadcastError>;
}

/// Lambda `Invoke` through the AWS SDK.
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
}

impl LambdaInvoker {
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        LambdaInvoker { client }
    }
}

#[async_trait]
impl Invoker for LambdaInvoker {
    async fn invoke(
        &self,
        function: &str,
        payload: Vec<u8>,
        asynchronous: bool,
    ) -> Result<Option<Vec<u8>>, BroadcastError> {
        let kind = if asynchronous {
            InvocationType::Event
        } else {
            InvocationType::RequestResponse
        };
        let out = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(kind)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| BroadcastError::Invoke(DisplayErrorContext(&e).to_string()))?;
        if let Some(error) = out.function_error() {
            let body = out
                .payload()
                .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
                .unwrap_or_default();
            return Err(BroadcastError::Invoke(format!("{error}: {body}")));
        }
        Ok(out.payload.map(Blob::into_inner))
    }
}

/// What a handler holds to broadcast. Cheap to clone.
#[derive(Clone)]
pub struct BroadcastClient {
    invoker: Arc<dyn Invoker>,
    function: Option<String>,
    warned: Arc<AtomicBool>,
}

impl BroadcastClient {
    /// `function: None` makes a client that skips every broadcast (saying so once).
    pub fn new(invoker: Arc<dyn Invoker>, function: Option<String>) -> Self {
        BroadcastClient {
            invoker,
            function,
            warned: Arc::default(),
        }
    }

    /// A Lambda client for `BROADCASTER_FUNCTION_NAME` (`AWS_ENDPOINT_URL_LAMBDA` honoured).
    pub async fn from_config(config: &crate::config::Config) -> Self {
        let sdk = crate::config::sdk_config().await;
        let function = config.broadcaster_function_name().map(str::to_owned);
        Self::new(
            Arc::new(LambdaInvoker::new(aws_sdk_lambda::Client::new(&sdk))),
            function,
        )
    }

    /// Broadcast `data` as an `event` to every client of `project_id`. Returns the event id,
    /// or `None` when no broadcaster is configured.
    pub async fn send(
        &self,
        project_id: Uuid,
        event: EventType,
        data: Value,
    ) -> Result<Option<Uuid>, BroadcastError> {
        self.dispatch(project_id, event, data, None).await
    }

    /// [`Self::send`], skipping the connection that caused the change.
    pub async fn send_excluding(
        &self,
        project_id: Uuid,
        event: EventType,
        data: Value,
        exclude_connection_id: &str,
    ) -> Result<Option<Uuid>, BroadcastError> {
        self.dispatch(project_id, event, data, Some(exclude_connection_id))
            .await
    }

    async fn dispatch(
        &self,
        project_id: Uuid,
        event: EventType,
        data: Value,
        exclude: Option<&str>,
    ) -> Result<Option<Uuid>, BroadcastError> {
        let Some(function) = &self.function else {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "BROADCASTER_FUNCTION_NAME is not set: realtime broadcasts are skipped"
                );
            }
            return Ok(None);
        };
        let event_id = Uuid::new_v4();
        let mut payload = json!({ "project_id": project_id, "type": event.as_str(), "data": data, "event_id": event_id });
        if let Some(exclude) = exclude {
            payload["exclude_connection_id"] = json!(exclude);
        }
        let bytes =
            serde_json::to_vec(&payload).map_err(|e| BroadcastError::Invoke(e.to_string()))?;
        if bytes.len() > MAX_INVOCATION_BYTES {
            return Err(BroadcastError::TooLarge(bytes.len()));
        }
        self.invoker.invoke(function, bytes, true).await?;
        Ok(Some(event_id))
    }
}
