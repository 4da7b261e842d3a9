//! What every route of the dev server shares: the handlers the Lambdas run (built by
//! `realtime::runtime::wiring`), the local gateway's sockets, the Invoke queue, the options.
//! It sits below the routes (`ws`, `management`, `lambda_api`, `server`): they import it,
//! it imports none of them.

use std::sync::Arc;

use realtime::aws_lambda_events::apigw::ApiGatewayProxyResponse;
use realtime::connection::store::ConnectionStore;
use realtime::lambda_runtime::{Context, LambdaEvent};
use realtime::runtime::handlers::Handlers;

use crate::cli::DevOptions;
use crate::gateway::Gateway;

/// Asynchronous invocations running at once (Lambda's concurrency for the function); the rest
/// wait their turn. Bounds the posts in flight, and so the connections, of the dev server.
pub const INVOKE_CONCURRENCY: usize = 16;

pub struct App {
    /// The five Lambda handlers, as `realtime::runtime::wiring` builds them.
    pub handlers: Handlers,
    pub gateway: Arc<Gateway>,
    /// The function name the Invoke API answers to.
    pub broadcaster_name: String,
    /// Slots for background (`Event`) invocations.
    pub invocations: tokio::sync::Semaphore,
    pub options: DevOptions,
}

impl App {
    /// The connection store every handler shares.
    pub fn store(&self) -> &Arc<dyn ConnectionStore> {
        &self.handlers.connect.store
    }
}

/// A Lambda event with the context the runtime would give it.
pub fn lambda_event<T>(payload: T) -> LambdaEvent<T> {
    LambdaEvent::new(payload, Context::default())
}

/// A handler's result as API Gateway would see it: an error is a 500 (the Lambdas' handlers
/// answer every input, so this is a bug, logged).
pub fn or_internal_error(
    result: Result<ApiGatewayProxyResponse, realtime::lambda_runtime::Error>,
) -> ApiGatewayProxyResponse {
    result.unwrap_or_else(|error| {
        tracing::error!(%error, "handler failed");
        realtime::connection::lifecycle::response(
            500,
            r#"{"message":"Internal server error"}"#.into(),
        )
    })
}
