//! The Lambda entry points: one struct per function, built once per container by
//! [`crate::runtime::wiring`] (`from_config`), whose `handle` takes the `LambdaEvent` the runtime delivers and calls one
//! function of [`lifecycle`], [`status`] or [`broadcaster`]. The dev server calls the same
//! `handle` with the events it builds from real sockets.

use std::sync::Arc;

use aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse,
    ApiGatewayWebsocketProxyRequest,
};
use lambda_runtime::{Error, LambdaEvent};

use crate::connection::auth::Authenticator;
use crate::connection::lifecycle::Limits;
use crate::connection::membership::Membership;
use crate::connection::store::ConnectionStore;
use crate::connection::{lifecycle, status};
use crate::delivery::events::EventStore;
use crate::delivery::fanout::FanOut;
use crate::delivery::presence::Presence;
use crate::delivery::{broadcaster, sweeper};
use crate::runtime::deadline;

/// `functions/connect`: the `$connect` route.
pub struct Connect {
    pub store: Arc<dyn ConnectionStore>,
    /// A project given at connect is a subscription: presence online when it is the user's first.
    pub presence: Option<Arc<Presence>>,
    pub membership: Arc<dyn Membership>,
    pub authenticator: Arc<Authenticator>,
    pub limits: Limits,
}

impl Connect {
    pub async fn handle(
        &self,
        event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
    ) -> Result<ApiGatewayProxyResponse, Error> {
        Ok(lifecycle::on_connect(
            &*self.store,
            self.presence.as_deref(),
            &*self.membership,
            &self.authenticator,
            &self.limits,
            &event.payload,
        )
        .await)
    }
}

/// `functions/disconnect`: the `$disconnect` route.
pub struct Disconnect {
    pub store: Arc<dyn ConnectionStore>,
    /// Tells the project's others when the user's last connection there closes.
    pub presence: Option<Arc<Presence>>,
}

impl Disconnect {
    pub async fn handle(
        &self,
        event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
    ) -> Result<ApiGatewayProxyResponse, Error> {
        Ok(lifecycle::on_disconnect(&*self.store, self.presence.as_deref(), &event.payload).await)
    }
}

/// `functions/subscribe`: the `subscribe`, `unsubscribe`, `ping`, `refresh` and `$default` routes.
pub struct Messages {
    pub store: Arc<dyn ConnectionStore>,
    /// The events table: `subscribe` answers `seq`/`epoch` and recovers with `since`.
    pub events: Option<Arc<dyn EventStore>>,
    /// Presence and typing; `None` without a Management API to post through.
    pub presence: Option<Arc<Presence>>,
    pub membership: Arc<dyn Membership>,
    pub authenticator: Arc<Authenticator>,
    pub limits: Limits,
}

impl Messages {
    pub async fn handle(
        &self,
        event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
    ) -> Result<ApiGatewayProxyResponse, Error> {
        Ok(lifecycle::on_message(
            &*self.store,
            self.events.as_deref(),
            self.presence.as_deref(),
            &*self.membership,
            &self.authenticator,
            &self.limits,
            &event.payload,
        )
        .await)
    }
}

/// `functions/status`: `GET /api/v1/projects/{projectId}/ws/status` on the HTTP API.
pub struct Status {
    pub store: Arc<dyn ConnectionStore>,
    pub membership: Arc<dyn Membership>,
    pub authenticator: Arc<Authenticator>,
}

impl Status {
    pub async fn handle(
        &self,
        event: LambdaEvent<ApiGatewayV2httpRequest>,
    ) -> Result<ApiGatewayV2httpResponse, Error> {
        Ok(status::project_status(
            &*self.store,
            &*self.membership,
            &self.authenticator,
            &event.payload,
        )
        .await)
    }
}

/// `functions/broadcaster`: invoked by HTTP handlers and the relay; fans one event out.
pub struct Broadcaster {
    pub fanout: Arc<FanOut>,
    /// The events table (recovery); `None` sends events without `seq`.
    pub events: Option<Arc<dyn EventStore>>,
    /// Connections found gone or expired, and revoked members, leave their project's presence.
    pub presence: Option<Arc<Presence>>,
}

impl Broadcaster {
    pub async fn handle(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        tracing::debug!(
            request_id = %event.context.request_id,
            deadline_ms = event.context.deadline,
            now_ms = crate::time::EpochMs::now().0,
            "invocation"
        );
        let deadline = deadline::deadline_from(event.context.deadline);
        Ok(broadcaster::invoke(
            &self.fanout,
            self.events.as_deref(),
            self.presence.as_deref(),
            &event.payload,
            &event.context.request_id,
            deadline,
        )
        .await?)
    }
}

/// `functions/sweeper`: started every minute by a schedule; sends the reconnect hint.
pub struct Sweeper {
    pub fanout: Arc<FanOut>,
    /// Presence for the connections the hint finds gone (`None`: off).
    pub presence: Option<Arc<Presence>>,
}

impl Sweeper {
    pub async fn handle(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        let deadline = deadline::deadline_from(event.context.deadline);
        let presence = self.presence.as_deref();
        let now = crate::time::EpochMs::now();
        Ok(sweeper::sweep(&self.fanout, presence, now, deadline).await?)
    }
}

/// Time kept back from the relay function's deadline for the claims in flight to finish.
pub const RELAY_DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// `functions/relay`: started every minute by a schedule; drains the outbox until its
/// deadline (so that one run overlaps the next, and a change waits for no schedule).
pub struct RelayFunction {
    pub relay: Arc<crate::relay::Relay>,
    pub metrics: crate::metrics::Metrics,
}

impl RelayFunction {
    pub async fn handle(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        // Stop claiming 10 s before the deadline (a third of the time left when there is less,
        // as under a local emulator) so that the claims in flight can finish.
        let deadline =
            deadline::deadline_with_margin(event.context.deadline, RELAY_DEADLINE_MARGIN);
        let drained = self.relay.run_until(Some(deadline.into())).await;
        let oldest = match self.relay.outbox().oldest_age_seconds().await {
            Ok(age) => age,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox's oldest row");
                f64::NAN
            }
        };
        tracing::info!(
            request_id = %event.context.request_id,
            delivered = drained.delivered,
            invocations = drained.invocations,
            dead = drained.dead,
            failed = drained.failed,
            oldest_age_s = oldest,
            "relay run"
        );
        if oldest.is_finite() {
            self.metrics.print(&drained.metric_values(oldest));
        }
        let mut result = serde_json::to_value(drained)?;
        result["oldest_age_s"] = serde_json::json!(oldest.is_finite().then_some(oldest));
        Ok(result)
    }
}

/// All five handlers, as the dev server runs them.
pub struct Handlers {
    pub connect: Connect,
    pub disconnect: Disconnect,
    pub message: Messages,
    pub status: Status,
    pub broadcaster: Broadcaster,
}
