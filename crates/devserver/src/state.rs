//! What every route of the dev server shares: the handlers the Lambdas run (built by
//! `realtime::runtime::wiring`), the local gateway's sockets, the Invoke queue, the options.
//! It sits below the routes (`ws`, `management`, `lambda_api`, `server`): they import it,
//! it imports none of them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use realtime::aws_lambda_events::apigw::ApiGatewayProxyResponse;
use realtime::connection::auth::JwtConfig;
use realtime::connection::store::ConnectionStore;
use realtime::lambda_runtime::{Context, LambdaEvent};
use realtime::runtime::handlers::Handlers;

use crate::cli::DevOptions;
use crate::gateway::Gateway;

/// Asynchronous invocations running at once (Lambda's concurrency for the function); the rest
/// wait their turn. Bounds the posts in flight, and so the connections, of the dev server.
pub const INVOKE_CONCURRENCY: usize = 16;

/// Asynchronous invocations accepted and not yet finished, bounded in number and bytes, as
/// Lambda bounds its event queue: past either bound the Invoke API answers 429
/// `TooManyRequestsException` and the caller retries (the SDK does so by itself).
pub struct InvokeQueue {
    pending: AtomicUsize,
    bytes: AtomicUsize,
    /// Invocations that went to the dead-letter queue (on AWS, the template's
    /// BroadcastDeadLetterQueue).
    dead: AtomicUsize,
    max_pending: usize,
    max_bytes: usize,
}

/// A place in the [`InvokeQueue`], given back when dropped.
pub struct Place {
    queue: Arc<InvokeQueue>,
    bytes: usize,
}

impl InvokeQueue {
    pub fn new(max_pending: usize, max_bytes: usize) -> Self {
        InvokeQueue {
            pending: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            dead: AtomicUsize::new(0),
            max_pending,
            max_bytes,
        }
    }

    /// A place for an invocation of `bytes`, or `None` when the queue is full.
    pub fn enter(self: &Arc<Self>, bytes: usize) -> Option<Place> {
        let pending = self.pending.fetch_add(1, Ordering::SeqCst);
        let queued = self.bytes.fetch_add(bytes, Ordering::SeqCst);
        let place = Place {
            queue: self.clone(),
            bytes,
        };
        (pending < self.max_pending && queued + bytes <= self.max_bytes).then_some(place)
    }

    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// The invocation `request_id` is given up on (`why`): counted and told, as Lambda sends
    /// it to the on-failure destination.
    pub fn dead_letter(&self, request_id: &str, why: &str) {
        self.dead.fetch_add(1, Ordering::SeqCst);
        tracing::error!(
            request_id,
            reason = why,
            "asynchronous invocation dead-lettered (on AWS: BroadcastDeadLetterQueue)"
        );
    }

    /// Invocations dead-lettered so far.
    pub fn dead_lettered(&self) -> usize {
        self.dead.load(Ordering::SeqCst)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.queue.pending.fetch_sub(1, Ordering::SeqCst);
        self.queue.bytes.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// What the console needs from the server: where its files are, and the key to mint tokens
/// with (or why none are minted).
#[derive(Clone)]
pub struct Console {
    pub web_dir: PathBuf,
    pub minting: Result<JwtConfig, String>,
}

pub struct App {
    /// The five Lambda handlers, as `realtime::runtime::wiring` builds them.
    pub handlers: Handlers,
    pub gateway: Arc<Gateway>,
    /// The function name the Invoke API answers to.
    pub broadcaster_name: String,
    /// Slots for background (`Event`) invocations.
    pub invocations: tokio::sync::Semaphore,
    /// Background invocations accepted and not finished.
    pub invoke_queue: Arc<InvokeQueue>,
    pub options: DevOptions,
    /// The dev console's files and token key.
    pub console: Console,
    /// Origins allowed to call the status endpoint.
    pub cors: crate::cors::Cors,
    /// The names and addresses requests may be addressed to (`Host`).
    pub hosts: crate::hosts::Hosts,
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
