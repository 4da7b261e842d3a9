//! Publishing from an HTTP handler: one asynchronous Lambda Invoke of the broadcaster per
//! event (DESIGN "Broadcaster invocation"), which never fails the handler's request.
//!
//! [`Invoker`] is the port (Lambda `Invoke`; the dev server answers the same API, and tests
//! record calls); [`LambdaInvoker`] is its AWS adapter; [`Publisher`] is what a handler holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;
use uuid::Uuid;

use crate::events::EventType;
use crate::invocation::{DirectMessageTooLarge, Invocation, PayloadTooLarge, check_direct_data};

/// Why a broadcast was not handed to Lambda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    /// The payload is over `MAX_INVOCATION_BYTES` (its size in bytes).
    TooLarge(usize),
    /// A direct message's `data` is over `MAX_DIRECT_DATA_BYTES` (its size in bytes).
    DirectMessageTooLarge(usize),
    /// Lambda refused or could not be reached.
    Invoke(String),
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::TooLarge(n) => PayloadTooLarge(*n).fmt(f),
            PublishError::DirectMessageTooLarge(n) => DirectMessageTooLarge(*n).fmt(f),
            PublishError::Invoke(e) => write!(f, "invoking the broadcaster failed: {e}"),
        }
    }
}

impl std::error::Error for PublishError {}

/// How to run a function: Lambda `Invoke`, or anything that answers like it.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Invoke `function` with `payload`: asynchronously (`Event`, no result) or synchronously
    /// (`RequestResponse`, the function's result).
    async fn invoke(
        &self,
        function: &str,
        payload: Vec<u8>,
        asynchronous: bool,
    ) -> Result<Option<Vec<u8>>, PublishError>;
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
    ) -> Result<Option<Vec<u8>>, PublishError> {
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
            .map_err(|e| PublishError::Invoke(DisplayErrorContext(&e).to_string()))?;
        if let Some(error) = out.function_error() {
            let body = out
                .payload()
                .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
                .unwrap_or_default();
            return Err(PublishError::Invoke(format!("{error}: {body}")));
        }
        Ok(out.payload.map(Blob::into_inner))
    }
}

/// What a handler holds to publish. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    invoker: Arc<dyn Invoker>,
    function: Option<String>,
    warned: Arc<AtomicBool>,
}

impl Publisher {
    /// `function: None` makes a publisher that skips every event (saying so once).
    pub fn new(invoker: Arc<dyn Invoker>, function: Option<String>) -> Self {
        Publisher {
            invoker,
            function,
            warned: Arc::default(),
        }
    }

    /// A Lambda publisher configured from the environment (see [`crate::sdk::lambda_client_from_env`])
    /// for the function `BROADCASTER_FUNCTION_NAME`.
    pub fn from_env() -> Self {
        let function = crate::sdk::env(crate::sdk::BROADCASTER_FUNCTION_NAME);
        let client = crate::sdk::lambda_client_from_env();
        Self::new(Arc::new(LambdaInvoker::new(client)), function)
    }

    /// Publish `data` as an `event` to every client of `project_id`; the event id, or `None`
    /// when nothing was sent. Never fails: a failure is logged (clients catch up on their next
    /// fetch), so the caller's request goes on.
    pub async fn publish(&self, project_id: Uuid, event: EventType, data: Value) -> Option<Uuid> {
        self.publish_invocation(Invocation::new(project_id, event, data))
            .await
    }

    /// Send `data` as a direct message to every connection of `user_id` (it reaches the
    /// user's open tabs, and a tab that was away recovers it). Never fails, as [`Self::publish`].
    pub async fn direct_message(&self, user_id: Uuid, data: Value) -> Option<Uuid> {
        self.publish_invocation(Invocation::direct(user_id, data))
            .await
    }

    /// [`Self::publish`] for a prepared invocation (an `exclude_connection_id`, an own event id).
    pub async fn publish_invocation(&self, invocation: Invocation) -> Option<Uuid> {
        let (project_id, user_id) = (invocation.project_id, invocation.user_id);
        match self.try_publish(invocation).await {
            Ok(id) => id,
            Err(error) => {
                tracing::warn!(%error, project_id = ?project_id, user_id = ?user_id, "realtime broadcast not sent; clients catch up on their next fetch");
                None
            }
        }
    }

    /// Hand `invocation` to Lambda, saying why not when it fails.
    pub async fn try_publish(&self, invocation: Invocation) -> Result<Option<Uuid>, PublishError> {
        let Some(function) = &self.function else {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "BROADCASTER_FUNCTION_NAME is not set: realtime broadcasts are skipped"
                );
            }
            return Ok(None);
        };
        if invocation.project_id.is_none() && invocation.user_id.is_some() {
            check_direct_data(&invocation.data)
                .map_err(|e| PublishError::DirectMessageTooLarge(e.0))?;
        }
        let bytes = invocation
            .to_bytes()
            .map_err(|e| PublishError::TooLarge(e.0))?;
        self.invoker.invoke(function, bytes, true).await?;
        Ok(Some(invocation.event_id))
    }
}
