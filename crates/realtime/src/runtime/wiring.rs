//! The one wiring: [`Config`] in, handlers out. The Lambdas build their handler here, and the
//! dev server builds all of its handlers here too, replacing only what it provides itself (the
//! connection store, the sender that reaches its sockets, the invoker its relay calls), so a
//! setting the Lambdas honour is honoured locally by construction.

use std::sync::{Arc, OnceLock};

use realtime_client::{Invoker, LambdaInvoker};
use tokio::sync::OnceCell;

use crate::aws::dynamo::DynamoStore;
use crate::aws::management_api::ManagementApiSender;
use crate::aws::secrets::SecretsManager;
use crate::connection::auth::Authenticator;
use crate::connection::auth::JwtConfig;
use crate::connection::auth::SecretStore;
use crate::connection::lifecycle::{ConnectSettings, MessageSettings};
use crate::connection::membership::{AllowAll, Membership};
use crate::connection::store::ConnectionStore;
use crate::delivery::events::EventStore;
use crate::delivery::fanout::FanOut;
use crate::delivery::presence::Presence;
use crate::delivery::sender::ConnectionSender;
use crate::relay::Relay;
use crate::runtime::config::{
    Config, ConfigError, DATABASE_URL, JWT_SECRET, MembershipMode, PRESENCE_MAX_SUBSCRIBERS,
    WEBSOCKET_ENDPOINT, sdk_config,
};
use crate::runtime::handlers::{
    Broadcaster, Connect, Disconnect, Handlers, Messages, RelayFunction, Status, Sweeper,
};
use crate::runtime::secrets;

/// Builds each component once, from the configuration or from what was provided.
pub struct Wiring {
    /// The environment as given: read only to resolve its secrets (and to know which were
    /// pending); every component reads [`Wiring::config`], the one configuration.
    env: Config,
    sdk: OnceCell<aws_types::SdkConfig>,
    store: OnceCell<Arc<dyn ConnectionStore>>,
    sender: OnceCell<Arc<dyn ConnectionSender>>,
    invoker: OnceCell<Arc<dyn Invoker>>,
    membership: OnceLock<Arc<dyn Membership>>,
    events: OnceLock<Arc<dyn EventStore>>,
    secrets: OnceCell<Arc<dyn SecretStore>>,
    /// The configuration with its secrets read (once, at the first component that needs one).
    resolved: OnceCell<Config>,
}

impl Wiring {
    pub fn new(config: &Config) -> Self {
        Wiring {
            env: config.clone(),
            sdk: OnceCell::new(),
            store: OnceCell::new(),
            sender: OnceCell::new(),
            invoker: OnceCell::new(),
            membership: OnceLock::new(),
            events: OnceLock::new(),
            secrets: OnceCell::new(),
            resolved: OnceCell::new(),
        }
    }

    /// Read secrets from `secrets` instead of Secrets Manager.
    pub fn with_secrets(self, secrets: Arc<dyn SecretStore>) -> Self {
        let _ = self.secrets.set(secrets);
        self
    }

    /// Where `*_SECRET_ARN` secrets are read: Secrets Manager unless a store was provided.
    pub async fn secrets(&self) -> Arc<dyn SecretStore> {
        if let Some(secrets) = self.secrets.get() {
            return secrets.clone();
        }
        let manager = SecretsManager::new(self.sdk().await);
        self.secrets
            .get_or_init(|| async { Arc::new(manager) as _ })
            .await
            .clone()
    }

    /// The configuration with `JWT_SECRET` and `DATABASE_URL` read from the secrets that
    /// `JWT_SECRET_ARN` and `DATABASE_URL_SECRET_ARN` name (a plain value wins).
    pub async fn config(&self) -> Result<&Config, ConfigError> {
        self.resolved
            .get_or_try_init(|| async {
                if secrets::wanted(&self.env) {
                    secrets::resolve(&self.env, &*self.secrets().await).await
                } else {
                    Ok(self.env.clone())
                }
            })
            .await
    }

    /// Use `store` instead of the DynamoDB table of `CONNECTIONS_TABLE`.
    pub fn with_store(self, store: Arc<dyn ConnectionStore>) -> Self {
        let _ = self.store.set(store);
        self
    }

    /// Use `sender` instead of the Management API at `WEBSOCKET_ENDPOINT`.
    pub fn with_sender(self, sender: Arc<dyn ConnectionSender>) -> Self {
        let _ = self.sender.set(sender);
        self
    }

    /// Use `invoker` instead of Lambda `Invoke` with the SDK configuration.
    pub fn with_invoker(self, invoker: Arc<dyn Invoker>) -> Self {
        let _ = self.invoker.set(invoker);
        self
    }

    /// The AWS SDK configuration, built once per start and shared by every client: the
    /// environment's ([`sdk_config`]) unless one was provided.
    pub async fn sdk(&self) -> &aws_types::SdkConfig {
        self.sdk.get_or_init(|| async { sdk_config() }).await
    }

    /// Use `sdk` for every AWS client (a host whose credentials come from elsewhere than the
    /// environment: `devhive-realtime relay` on ECS or EC2 passes aws-config's default chain).
    pub fn with_sdk(self, sdk: aws_types::SdkConfig) -> Self {
        let _ = self.sdk.set(sdk);
        self
    }

    /// The connection store: DynamoDB over `CONNECTIONS_TABLE` unless one was provided.
    pub async fn store(&self) -> Result<Arc<dyn ConnectionStore>, ConfigError> {
        if let Some(store) = self.store.get() {
            return Ok(store.clone());
        }
        let store = self.dynamo_store().await?;
        Ok(self
            .store
            .get_or_init(|| async { Arc::new(store) as _ })
            .await
            .clone())
    }

    /// The DynamoDB store over `CONNECTIONS_TABLE`, as its concrete type (the dev server sets
    /// its page size and creates the table).
    pub async fn dynamo_store(&self) -> Result<DynamoStore, ConfigError> {
        let settings: crate::aws::dynamo::Settings = self.config().await?.read()?;
        Ok(DynamoStore::new(self.dynamodb().await?, settings.table))
    }

    /// The DynamoDB client: at `AWS_ENDPOINT_URL_DYNAMODB` when the configuration names one
    /// (DynamoDB Local, or a fault proxy in front of it: tests/faults), else the SDK's.
    pub async fn dynamodb(&self) -> Result<aws_sdk_dynamodb::Client, ConfigError> {
        let mut builder = aws_sdk_dynamodb::config::Builder::from(self.sdk().await);
        if let Some(endpoint) = self
            .config()
            .await?
            .get(crate::runtime::config::AWS_ENDPOINT_URL_DYNAMODB)
        {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(aws_sdk_dynamodb::Client::from_conf(builder.build()))
    }

    /// The event store: the one provided, else DynamoDB over `EVENTS_TABLE` when it is set,
    /// else none (events go out without `seq`; subscribe answers without one).
    pub async fn events(&self) -> Result<Option<Arc<dyn EventStore>>, ConfigError> {
        if let Some(events) = self.events.get() {
            return Ok(Some(events.clone()));
        }
        let settings: crate::delivery::events::Settings = self.config().await?.read()?;
        let Some(table) = settings.table else {
            return Ok(None);
        };
        let store = crate::aws::events::DynamoEventStore::new(
            self.dynamodb().await?,
            table,
            settings.retention_s,
        );
        let store: Arc<dyn EventStore> = Arc::new(store);
        Ok(Some(self.events.get_or_init(|| store).clone()))
    }

    /// Use `events` instead of the table of `EVENTS_TABLE` (the dev server's memory store).
    pub fn with_events(self, events: Arc<dyn EventStore>) -> Self {
        let _ = self.events.set(events);
        self
    }

    /// The membership adapter of `MEMBERSHIP` / `DATABASE_URL` (one pool, shared).
    pub async fn membership(&self) -> Result<Arc<dyn Membership>, ConfigError> {
        if let Some(membership) = self.membership.get() {
            return Ok(membership.clone());
        }
        let membership: Arc<dyn Membership> = match self.config().await?.read()? {
            MembershipMode::AllowAll => Arc::new(AllowAll::new()),
            MembershipMode::Postgres { database_url } => Arc::new(
                crate::postgres::PgMembership::connect_lazy(&database_url).map_err(|e| {
                    ConfigError(format!("{DATABASE_URL} is not a usable Postgres URL: {e}"))
                })?,
            ),
        };
        Ok(self.membership.get_or_init(|| membership).clone())
    }

    /// The JWT verifier of `JWT_SECRET` (or the secret of `JWT_SECRET_ARN`, re-read when a
    /// signature fails), `JWT_ISSUER`, `JWT_AUDIENCE`.
    pub async fn authenticator(&self) -> Result<Arc<Authenticator>, ConfigError> {
        let jwt: JwtConfig = self.config().await?.read()?;
        let authenticator = Authenticator::new(&jwt);
        let rotating = secrets::pending(&self.env)
            .find(|(plain, _)| *plain == JWT_SECRET)
            .and_then(|(_, arn_var)| self.env.get(arn_var));
        Ok(Arc::new(match rotating {
            Some(arn) => authenticator.rotating(self.secrets().await, arn),
            None => authenticator,
        }))
    }

    /// The sender: the Management API at `WEBSOCKET_ENDPOINT` unless one was provided.
    pub async fn sender(&self) -> Result<Arc<dyn ConnectionSender>, ConfigError> {
        if let Some(sender) = self.sender.get() {
            return Ok(sender.clone());
        }
        let endpoint: crate::aws::management_api::Settings = self.config().await?.read()?;
        let endpoint = endpoint.endpoint;
        // Requests signed and sent without the SDK's per-request pipeline (a fraction of its
        // CPU a post: docs/performance.md), with the region and credentials of Lambda's
        // environment.
        let sdk = self.sdk().await;
        let max_open = self.fanout_settings().await?.concurrency;
        let sender: Arc<dyn ConnectionSender> = Arc::new(
            ManagementApiSender::for_endpoint(sdk, &endpoint, max_open)
                .await
                .map_err(|e| {
                    ConfigError(format!(
                        "cannot sign requests to the Management API at {endpoint}: {e}"
                    ))
                })?,
        );
        Ok(self.sender.get_or_init(|| async { sender }).await.clone())
    }

    /// Fan-out over the store and the sender, `BROADCAST_CONCURRENCY` posts in flight.
    pub async fn fanout(&self) -> Result<FanOut, ConfigError> {
        let sender = self.sender().await?;
        let store = self.store().await?;
        let concurrency = self.fanout_settings().await?.concurrency;
        let metrics = crate::metrics::Settings::of(self.config().await?);
        Ok(FanOut::new(store, sender)
            .with_concurrency(concurrency)
            .with_metrics(metrics.metrics("broadcaster")))
    }

    async fn fanout_settings(&self) -> Result<crate::delivery::fanout::Settings, ConfigError> {
        self.config().await?.read()
    }

    async fn presence_settings(&self) -> Result<crate::delivery::presence::Settings, ConfigError> {
        self.config().await?.read()
    }

    /// Lambda `Invoke` (`AWS_ENDPOINT_URL_LAMBDA` honoured) unless an invoker was provided.
    pub async fn invoker(&self) -> Arc<dyn Invoker> {
        if let Some(invoker) = self.invoker.get() {
            return invoker.clone();
        }
        let client = realtime_client::aws_sdk_lambda::Client::new(self.sdk().await);
        self.invoker
            .get_or_init(|| async { Arc::new(LambdaInvoker::new(client)) as _ })
            .await
            .clone()
    }

    pub async fn connect(&self) -> Result<Connect, ConfigError> {
        // Presence last: a function missing its configuration says so in one line, before
        // any note that presence is off.
        Ok(Connect {
            authenticator: self.authenticator().await?,
            membership: self.membership().await?,
            limits: self.config().await?.read::<ConnectSettings>()?.limits(),
            store: self.store().await?,
            presence: self.presence().await?,
        })
    }

    /// Presence and typing over the fan-out, when there is a Management API to post through
    /// (`WEBSOCKET_ENDPOINT`, or a provided sender); without one they are off, and said so.
    pub async fn presence(&self) -> Result<Option<Arc<Presence>>, ConfigError> {
        if self.sender.get().is_none() && self.config().await?.get(WEBSOCKET_ENDPOINT).is_none() {
            tracing::warn!(
                "{WEBSOCKET_ENDPOINT} is not set: presence and typing are off in this function"
            );
            return Ok(None);
        }
        let max = self.presence_settings().await?.max_subscribers;
        Self::presence_over(Arc::new(self.fanout().await?), max)
    }

    /// Presence over `fanout`, unless `PRESENCE_MAX_SUBSCRIBERS` (`max`) is 0 (off).
    fn presence_over(
        fanout: Arc<FanOut>,
        max: usize,
    ) -> Result<Option<Arc<Presence>>, ConfigError> {
        if max == 0 {
            tracing::info!("{PRESENCE_MAX_SUBSCRIBERS} is 0: presence and typing are off");
            return Ok(None);
        }
        Ok(Some(Arc::new(Presence::new(fanout, max))))
    }

    pub async fn disconnect(&self) -> Result<Disconnect, ConfigError> {
        Ok(Disconnect {
            store: self.store().await?,
            presence: self.presence().await?,
        })
    }

    pub async fn message(&self) -> Result<Messages, ConfigError> {
        Ok(Messages {
            events: self.events().await?,
            authenticator: self.authenticator().await?,
            membership: self.membership().await?,
            limits: self.config().await?.read::<MessageSettings>()?.limits(),
            store: self.store().await?,
            presence: self.presence().await?,
        })
    }

    pub async fn status(&self) -> Result<Status, ConfigError> {
        Ok(Status {
            authenticator: self.authenticator().await?,
            membership: self.membership().await?,
            store: self.store().await?,
        })
    }

    pub async fn broadcaster(&self) -> Result<Broadcaster, ConfigError> {
        let fanout = Arc::new(self.fanout().await?);
        Ok(Broadcaster {
            presence: Self::presence_over(
                fanout.clone(),
                self.presence_settings().await?.max_subscribers,
            )?,
            fanout,
            events: self.events().await?,
        })
    }

    /// The reconnect sweep: fan-out over the store and the sender, like the broadcaster's.
    pub async fn sweeper(&self) -> Result<Sweeper, ConfigError> {
        let fanout = Arc::new(self.fanout().await?);
        Ok(Sweeper {
            presence: Self::presence_over(
                fanout.clone(),
                self.presence_settings().await?.max_subscribers,
            )?,
            fanout,
        })
    }

    /// Every handler (the dev server runs them all in one process).
    pub async fn handlers(&self) -> Result<Handlers, ConfigError> {
        Ok(Handlers {
            connect: self.connect().await?,
            disconnect: self.disconnect().await?,
            message: self.message().await?,
            status: self.status().await?,
            broadcaster: self.broadcaster().await?,
        })
    }

    /// The relay: `DATABASE_URL` to listen on, `BROADCASTER_FUNCTION_NAME` to invoke.
    pub async fn relay(&self) -> Result<Relay, ConfigError> {
        let settings: crate::relay::Settings = self.config().await?.read()?;
        Relay::new(
            settings.database_url,
            self.invoker().await,
            settings.function,
            settings.concurrency,
            settings.poll,
        )
        .map_err(|e| ConfigError(format!("{DATABASE_URL} is not a usable Postgres URL: {e}")))
    }
}

/// What each Lambda's `main` calls: its handler, from the environment, through the one wiring.
macro_rules! from_config {
    ($($handler:ident => $part:ident),* $(,)?) => {$(
        impl $handler {
            /// Built by [`Wiring`], the one wiring.
            pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
                Wiring::new(config).$part().await
            }
        }
    )*};
}

from_config!(
    Connect => connect,
    Disconnect => disconnect,
    Messages => message,
    Status => status,
    Broadcaster => broadcaster,
    Sweeper => sweeper,
);

impl RelayFunction {
    /// Built by [`Wiring::relay`], the one wiring, with the relay's metrics.
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        Ok(RelayFunction {
            relay: Arc::new(Wiring::new(config).relay().await?),
            metrics: crate::metrics::Settings::of(config).metrics("relay"),
        })
    }
}
