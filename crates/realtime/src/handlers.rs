//! The Lambda entry points: one struct per function, built once per container from
//! [`Config`], whose `handle` takes the `LambdaEvent` the runtime delivers and calls one
//! function of [`lifecycle`](crate::lifecycle) or [`status`](crate::status).

use std::sync::Arc;

use aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse,
    ApiGatewayWebsocketProxyRequest,
};
use lambda_runtime::{Error, LambdaEvent};

use crate::auth::Authenticator;
use crate::config::{Config, ConfigError};
use crate::fanout::FanOut;
use crate::membership::Membership;
use crate::sender::ManagementApiSender;
use crate::store::ConnectionStore;
use crate::{broadcaster, lifecycle, status};

/// `functions/connect`: the `$connect` route.
pub struct Connect {
    pub store: Arc<dyn ConnectionStore>,
    pub membership: Arc<dyn Membership>,
    pub authenticator: Arc<Authenticator>,
}

impl Connect {
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        Ok(Connect {
            authenticator: config.authenticator()?,
            membership: config.membership()?,
            store: config.store().await?,
        })
    }

    pub async fn handle(
        &self,
        event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
    ) -> Result<ApiGatewayProxyResponse, Error> {
        Ok(lifecycle::on_connect(
            &*self.store,
            &*self.membership,
            &self.authenticator,
            &event.payload,
        )
        .await)
    }
}

/// `functions/disconnect`: the `$disconnect` route.
pub struct Disconnect {
    pub store: Arc<dyn ConnectionStore>,
}

impl Disconnect {
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        Ok(Disconnect {
            store: config.store().await?,
        })
    }

    pub async fn handle(
        &self,
        event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
    ) -> Result<ApiGatewayProxyResponse, Error> {
        Ok(lifecycle::on_disconnect(&*self.store, &event.payload).await)
    }
}

/// `functions/subscribe`: the `subscribe`, `unsubscribe`, `ping` and `$default` routes.
pub struct Message {
    pub store: Arc<dyn ConnectionStore>,
    pub membership: Arc<dyn Membership>,
}

impl Message {
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        Ok(Message {
            membership: config.membership()?,
            store: config.store().await?,
        })
    }

    pub async fn handle(
        &self,
        event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
    ) -> Result<ApiGatewayProxyResponse, Error> {
        Ok(lifecycle::on_message(&*self.store, &*self.membership, &event.payload).await)
    }
}

/// `functions/status`: `GET /api/v1/projects/{projectId}/ws/status` on the HTTP API.
pub struct Status {
    pub store: Arc<dyn ConnectionStore>,
    pub membership: Arc<dyn Membership>,
    pub authenticator: Arc<Authenticator>,
}

impl Status {
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        Ok(Status {
            authenticator: config.authenticator()?,
            membership: config.membership()?,
            store: config.store().await?,
        })
    }

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
    pub fanout: FanOut,
}

impl Broadcaster {
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let endpoint = config.websocket_endpoint()?.to_owned();
        // One SDK configuration for both clients: it is loaded once per cold start.
        let sdk = crate::config::sdk_config().await;
        let store = config.store_with(&sdk)?;
        let sender = ManagementApiSender::for_endpoint(&sdk, &endpoint);
        let concurrency = config.broadcast_concurrency()?;
        Ok(Broadcaster {
            fanout: FanOut::new(store, Arc::new(sender)).with_concurrency(concurrency),
        })
    }

    pub async fn handle(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        let deadline = broadcaster::deadline_from(event.context.deadline);
        Ok(broadcaster::invoke(
            &self.fanout,
            &event.payload,
            &event.context.request_id,
            deadline,
        )
        .await?)
    }
}
