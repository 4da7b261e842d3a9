//! Assembling and running the dev server: the handlers from the same wiring the Lambdas use
//! (`realtime::runtime::wiring`), given what only the dev server has — its store (memory by
//! default), a sender that reaches its own sockets, an invoker that calls its own Invoke API —
//! and the dev-only defaults (the development JWT secret, membership off without a database);
//! then the HTTP routes and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use realtime::aws_lambda_events::encodings::Body;
use realtime::connection::auth::DEV_JWT_SECRET;
use realtime::connection::store::ConnectionStore;
use realtime::delivery::sender::ConnectionSender;
use realtime::memory::MemoryStore;
use realtime::realtime_client::LambdaInvoker;
use realtime::relay::Relay;
use realtime::runtime::config::{self, Config, ConfigError};
use realtime::runtime::wiring::Wiring;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::cli::{Delivery, DevOptions, StoreKind};
use crate::faults::Faults;
use crate::gateway::Gateway;
use crate::management::DirectSender;
use crate::state::{App, INVOKE_CONCURRENCY, InvokeQueue, lambda_event};
use crate::{console, events, lambda_api, management, ws};

/// Table name when the dev server uses DynamoDB and `CONNECTIONS_TABLE` is unset.
pub const DEFAULT_TABLE: &str = "devhive-connections";
/// The broadcaster's name when `BROADCASTER_FUNCTION_NAME` is unset.
pub const DEFAULT_BROADCASTER: &str = "broadcaster";

/// What the dev server runs with, for the banner.
#[derive(Debug, Clone)]
pub struct Summary {
    pub store: String,
    pub membership: String,
    pub relay: String,
    pub dev_secret: bool,
}

/// A configured dev server, bound to its address but not yet serving.
pub struct DevServer {
    pub app: Arc<App>,
    pub summary: Summary,
    listener: TcpListener,
    relay: Option<Arc<Relay>>,
    /// `--tls`: the certificate and CA of this run.
    pub tls: Option<Arc<crate::tls::DevTls>>,
}

/// A listening dev server.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    relay: Option<(Arc<Relay>, tokio::task::JoinHandle<()>)>,
    /// `--tls`: the certificate and CA of this run.
    pub tls: Option<Arc<crate::tls::DevTls>>,
}

impl DevServer {
    /// Bind `options.addr` (port 0 picks a free one) and build the components. `config` is
    /// the process environment in production use.
    pub async fn new(options: DevOptions, config: Config) -> Result<Self, ConfigError> {
        let listener = TcpListener::bind(options.addr)
            .await
            .map_err(|e| ConfigError(format!("cannot listen on {}: {e}", options.addr)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ConfigError(e.to_string()))?;
        let defaults = DevDefaults::apply(config, &options)?;
        let config = &defaults.config;
        // Every default is in the configuration now: from here on, one wiring builds it all.
        let wiring = Wiring::new(config);
        let (store, store_summary) = store(&wiring, config, &options, defaults.use_dynamo).await?;
        let gateway = Arc::new(Gateway::new(Faults::new(&options)));
        // With --tls this server's own clients call it over HTTPS too, trusting its CA.
        let tls = match options.tls {
            true => Some(Arc::new(
                crate::tls::DevTls::generate(addr, &options.allow_hosts, &options.tls_ca_out)
                    .map_err(ConfigError)?,
            )),
            false => None,
        };
        let max_open = config
            .read::<realtime::delivery::fanout::Settings>()?
            .concurrency;
        let (sender, invoker) =
            transport(&options, addr, &gateway, tls.as_deref(), max_open).await?;
        // Events for recovery live in memory unless EVENTS_TABLE names a table: a restarted
        // dev server starts new epochs, and resuming clients are told to refetch.
        let events: realtime::delivery::events::Settings = config.read()?;
        let wiring = match &events.table {
            Some(table) => {
                if config.get(config::AWS_ENDPOINT_URL_DYNAMODB).is_some() {
                    events_table(&wiring.dynamodb().await?, table).await?;
                }
                wiring
            }
            None => wiring.with_events(Arc::new(realtime::memory::MemoryEventStore::new(
                events.retention_s,
            ))),
        };
        let wiring = wiring
            .with_store(store)
            .with_sender(sender)
            .with_invoker(invoker);
        let handlers = wiring.handlers().await?;
        let relay = match config.get(config::DATABASE_URL) {
            Some(_) => Some(Arc::new(wiring.relay().await?)),
            None => None,
        };
        let app = Arc::new(App {
            console: console(config, addr, &options)?,
            cors: crate::cors::Cors::new(&options.cors_origins),
            hosts: crate::hosts::Hosts::new(addr.ip(), &options.allow_hosts)
                .map_err(ConfigError)?,
            handlers,
            gateway,
            broadcaster_name: defaults.broadcaster_name.clone(),
            invocations: tokio::sync::Semaphore::new(INVOKE_CONCURRENCY),
            invoke_queue: Arc::new(InvokeQueue::new(
                options.invoke_queue,
                options.invoke_queue_mb * 1024 * 1024,
            )),
            options,
        });
        let summary = Summary {
            store: store_summary,
            membership: membership_summary(config)?,
            relay: relay_summary(relay.is_some(), app.options.delivery),
            dev_secret: defaults.dev_secret,
        };
        Ok(DevServer {
            app,
            summary,
            listener,
            relay,
            tls,
        })
    }

    pub fn router(&self) -> Router {
        let connections = get(management::get)
            .post(management::post)
            .delete(management::delete);
        Router::new()
            .route("/", get(ws::upgrade))
            .route(ws::LEGACY_PATH, get(ws::upgrade))
            .route("/{stage}", get(ws::upgrade))
            .route("/@connections/{id}", connections.clone())
            .route("/{stage}/@connections/{id}", connections)
            .route(
                "/api/v1/projects/{projectId}/ws/status",
                get(status).options(preflight),
            )
            .route("/console/token", get(console::token))
            .route("/console/{name}", get(console::asset))
            .route(
                "/2015-03-31/functions/{name}/invocations",
                axum::routing::post(lambda_api::invoke),
            )
            .fallback(crate::not_found::not_found)
            .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BODY_BYTES))
            // Outermost: a request addressed to another name reaches no route (DNS rebinding).
            .layer(axum::middleware::from_fn_with_state(
                self.app.clone(),
                crate::guard::host,
            ))
            .with_state(self.app.clone())
    }

    /// Serve in the background.
    pub async fn start(self) -> std::io::Result<Running> {
        let addr = self.listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let router = self.router();
        let listener = self.listener;
        let handshake_timeout = self.app.options.handshake_timeout();
        let tls = self.tls.clone();
        let task = tokio::spawn(serve(listener, router, handshake_timeout, tls, stopped));
        let relay = self.relay.map(|relay| {
            let running = relay.clone();
            (relay, tokio::spawn(async move { running.run().await }))
        });
        Ok(Running {
            addr,
            app: self.app,
            stop: Some(stop),
            task,
            relay,
            tls: self.tls,
        })
    }
}

impl Running {
    /// Wait until the relay listens (immediately `false` without a relay).
    pub async fn relay_ready(&self) -> bool {
        let Some((relay, _)) = &self.relay else {
            return false;
        };
        let mut ready = relay.ready();
        ready.wait_for(|r| *r).await.is_ok()
    }

    /// Close every socket with 1001 (each through `$disconnect`), then stop listening.
    pub async fn shutdown(mut self) {
        if let Some((_, task)) = self.relay.take() {
            task.abort();
        }
        self.app
            .gateway
            .close_all(ws::CLOSE_GOING_AWAY, "Going away")
            .await;
        let drained =
            tokio::time::timeout(SHUTDOWN_GRACE, self.app.gateway.wait_open(|n| n == 0)).await;
        if drained.is_err() {
            tracing::warn!(
                open = self.app.gateway.open_count(),
                "shutdown: stopping before every $disconnect finished (their items expire by TTL)"
            );
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// `https://ADDR` with `--tls`, `http://ADDR` otherwise.
    pub fn http_url(&self) -> String {
        match self.tls {
            Some(_) => format!("https://{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }
}

/// Largest HTTP request head (request line and headers) accepted.
pub const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;
/// Largest request body accepted (Lambda's synchronous invocation limit; every other route
/// needs far less: PostToConnection takes 128 KB).
pub const MAX_REQUEST_BODY_BYTES: usize = 6 * 1024 * 1024;

/// Accept connections until `stopped`: HTTP/1.1 with upgrades, each connection's request head
/// read within `handshake_timeout` (a client that trickles its headers is cut off, as API
/// Gateway does) and bounded in size; with `tls`, over TLS when the client opens with a
/// ClientHello (the handshake within the same timeout). Connections already accepted finish
/// on their own.
async fn serve(
    listener: TcpListener,
    router: Router,
    handshake_timeout: Duration,
    tls: Option<Arc<crate::tls::DevTls>>,
    stopped: oneshot::Receiver<()>,
) {
    use crate::tls::Accepted;
    use hyper_util::service::TowerToHyperService;
    tokio::pin!(stopped);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: say so, and keep serving.
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service =
            TowerToHyperService::new(router.clone().layer(axum::Extension(ConnectInfo(peer))));
        let tls = tls.clone();
        tokio::spawn(async move {
            match &tls {
                None => serve_connection(stream, service, handshake_timeout, peer).await,
                Some(tls) => match tls.accept(stream, handshake_timeout).await {
                    Some(Accepted::Plain(stream)) => {
                        serve_connection(stream, service, handshake_timeout, peer).await
                    }
                    Some(Accepted::Tls(stream)) => {
                        serve_connection(*stream, service, handshake_timeout, peer).await
                    }
                    None => {}
                },
            }
        });
    }
}

/// One accepted connection, plain or TLS, served until it closes.
async fn serve_connection<I>(
    io: I,
    service: hyper_util::service::TowerToHyperService<Router>,
    handshake_timeout: Duration,
    peer: SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(error) = connection.await {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

/// `GET /api/v1/projects/{projectId}/ws/status`, served by the status Lambda's handler.
async fn status(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/api/v1/projects/{project}/ws/status");
    let event = events::http_get(
        realtime::connection::status::ROUTE,
        &path,
        &headers,
        [("projectId", project)],
        peer.ip().to_string(),
    );
    let response = match app.handlers.status.handle(lambda_event(event)).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(%error, "status handler failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let status = StatusCode::from_u16(response.status_code as u16)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match response.body {
        Some(Body::Text(t)) => t,
        _ => String::new(),
    };
    let mut response = (status, response.headers, body).into_response();
    app.cors.decorate(&headers, &mut response);
    response
}

/// `OPTIONS` on the status endpoint: the browser's preflight.
async fn preflight(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    app.cors.preflight(&headers)
}

/// The dev-only defaults, written into the configuration so that the one wiring reads them:
/// the development JWT secret, membership off without a database, the table and the
/// broadcaster's name.
struct DevDefaults {
    config: Config,
    dev_secret: bool,
    use_dynamo: bool,
    broadcaster_name: String,
}

impl DevDefaults {
    fn apply(mut config: Config, options: &DevOptions) -> Result<Self, ConfigError> {
        let dev_secret = config.get(config::JWT_SECRET).is_none();
        if dev_secret {
            config = config.with(config::JWT_SECRET, DEV_JWT_SECRET);
        }
        if config.get(config::DATABASE_URL).is_none() && config.get(config::MEMBERSHIP).is_none() {
            config = config.with(config::MEMBERSHIP, "none");
        }
        let use_dynamo = match options.store {
            Some(kind) => kind == StoreKind::Dynamodb,
            None => config.get(config::AWS_ENDPOINT_URL_DYNAMODB).is_some(),
        };
        if use_dynamo && config.get(config::CONNECTIONS_TABLE).is_none() {
            config = config.with(config::CONNECTIONS_TABLE, DEFAULT_TABLE);
        }
        let broadcaster_name = config
            .get(config::BROADCASTER_FUNCTION_NAME)
            .unwrap_or(DEFAULT_BROADCASTER)
            .to_owned();
        config = config.with(config::BROADCASTER_FUNCTION_NAME, broadcaster_name.clone());
        Ok(DevDefaults {
            config,
            dev_secret,
            use_dynamo,
            broadcaster_name,
        })
    }
}

/// The banner's membership line.
fn membership_summary(config: &Config) -> Result<String, ConfigError> {
    Ok(match config.read()? {
        config::MembershipMode::AllowAll => {
            "none (every authenticated user may open every project)".to_owned()
        }
        config::MembershipMode::Postgres { .. } => "postgres (project_members)".to_owned(),
    })
}

/// The connection store: DynamoDB (its table created when missing, and re-created when it
/// disappears under the running server: [`watch_table`]), or memory; and its banner line.
async fn store(
    wiring: &Wiring,
    config: &Config,
    options: &DevOptions,
    use_dynamo: bool,
) -> Result<(Arc<dyn ConnectionStore>, String), ConfigError> {
    if !use_dynamo {
        return Ok((Arc::new(MemoryStore::new()), "memory".to_owned()));
    }
    let mut store = wiring.dynamo_store().await?;
    if options.query_page_limit > 0 {
        store = store.with_page_limit(options.query_page_limit as i32);
    }
    let created = realtime::aws::dynamo::ensure_table(store.client(), store.table())
        .await
        .map_err(|e| {
            ConfigError(format!(
                "cannot reach the DynamoDB table {}: {e}",
                store.table()
            ))
        })?;
    if created {
        tracing::info!(
            table = store.table(),
            "created the connections table (dev only)"
        );
    }
    let endpoint = config
        .get(config::AWS_ENDPOINT_URL_DYNAMODB)
        .unwrap_or("AWS")
        .to_owned();
    let summary = format!("dynamodb (table {} at {endpoint})", store.table());
    if config.get(config::AWS_ENDPOINT_URL_DYNAMODB).is_some() {
        tokio::spawn(watch_table(
            store.client().clone(),
            store.table().to_owned(),
        ));
    }
    Ok((Arc::new(store), summary))
}

/// The events table `table` on a local DynamoDB endpoint, created when missing (as
/// template.yaml declares it); production tables come from the template, never from code.
async fn events_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), ConfigError> {
    if client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok()
    {
        return Ok(());
    }
    realtime::aws::events::create_table(client, table)
        .await
        .map_err(|e| ConfigError(format!("cannot create the events table {table}: {e}")))?;
    tracing::info!(table, "created the events table (dev only)");
    Ok(())
}

/// How long stopping waits for the closed sockets' `$disconnect`s (each may tell presence to
/// every other connection of its project: with 100 clients of one project, N² posts).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// How often [`watch_table`] looks for the table.
const TABLE_WATCH: Duration = Duration::from_secs(1);

/// DynamoDB Local keeps its tables in memory, so restarting it loses the table under a running
/// dev server: look for it every [`TABLE_WATCH`] and re-create it (empty) when it is gone, so
/// that the server recovers without the store knowing. Only against a local endpoint
/// (`AWS_ENDPOINT_URL_DYNAMODB`): production tables come from template.yaml, never from code.
async fn watch_table(client: aws_sdk_dynamodb::Client, table: String) {
    let mut every = tokio::time::interval(TABLE_WATCH);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match realtime::aws::dynamo::ensure_table(&client, &table).await {
            Ok(true) => tracing::warn!(
                table,
                "the connections table was gone (DynamoDB Local restarted?): re-created it, empty"
            ),
            Ok(false) => {}
            Err(error) => tracing::debug!(%error, table, "cannot look for the connections table"),
        }
    }
}

/// How the in-process broadcaster reaches the sockets, and how the relay reaches the
/// broadcaster: through this server's own Management API (with the deployed broadcaster's
/// sender, signed as on AWS; or with `--delivery direct` the same post in-process) and its
/// Invoke API (the same asynchronous queue as on AWS), over HTTPS trusting its CA with `--tls`.
async fn transport(
    options: &DevOptions,
    addr: SocketAddr,
    gateway: &Arc<Gateway>,
    tls: Option<&crate::tls::DevTls>,
    max_open: usize,
) -> Result<(Arc<dyn ConnectionSender>, Arc<LambdaInvoker>), ConfigError> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    // One TLS configuration (the system's certificates read once) for both clients.
    let trust = realtime_client::http::tls_config_trusting(
        tls.map(crate::tls::DevTls::ca_der).unwrap_or_default(),
    );
    let http = realtime_client::http::client_with_tls(trust.clone());
    let sender: Arc<dyn ConnectionSender> = match options.delivery {
        Delivery::Http => Arc::new(crate::tls::local_management_sender(
            &format!("{scheme}://{addr}/{}", options.stage),
            trust,
            max_open,
        )),
        Delivery::Direct => Arc::new(DirectSender {
            gateway: gateway.clone(),
        }),
    };
    let invoker = Arc::new(LambdaInvoker::new(
        realtime_client::sdk::local_lambda_client_with(&format!("{scheme}://{addr}"), http),
    ));
    Ok((sender, invoker))
}

/// The console's files and the key it mints tokens with, or why it mints none: only on
/// loopback, and only under the development secret unless `--console-tokens-any-secret`.
fn console(
    config: &Config,
    addr: SocketAddr,
    options: &DevOptions,
) -> Result<crate::state::Console, ConfigError> {
    let jwt: realtime::connection::auth::JwtConfig = config.read()?;
    let minting = if !addr.ip().is_loopback() {
        Err(crate::console::NOT_LOOPBACK.to_owned())
    } else if jwt.secret != DEV_JWT_SECRET.as_bytes() && !options.console_tokens_any_secret {
        Err(crate::console::NOT_DEV_SECRET.to_owned())
    } else {
        Ok(jwt)
    };
    Ok(crate::state::Console {
        web_dir: options.web_dir.clone(),
        minting,
    })
}

/// The banner's relay line.
fn relay_summary(running: bool, delivery: Delivery) -> String {
    if !running {
        return "off (no DATABASE_URL)".to_owned();
    }
    format!(
        "listening on {} (DATABASE_URL), invoking the broadcaster through the Invoke API ({} delivery)",
        realtime::postgres::CHANNEL,
        match delivery {
            Delivery::Http => "http",
            Delivery::Direct => "direct",
        }
    )
}
