//! `devhive-realtime`: the dev server (`dev`), the relay for any host (`relay`), and developer
//! tools (`token`, `migrate`, `table`).

use clap::Parser;
use devserver::DevServer;
use devserver::cli::{Cli, Command};
use realtime::connection::auth::{DEV_JWT_SECRET, JwtConfig};
use realtime::runtime::config::{Config, or_exit};
use realtime::runtime::wiring::Wiring;

/// The wiring of a command that may run on any host (ECS, EC2, a laptop with a profile): region
/// and credentials from aws-config's default chain, with the functions' HTTP client, timeouts
/// and retries. (The functions themselves read Lambda's environment, `sdk_config`.)
async fn anywhere() -> Wiring {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(realtime_client::http::client())
        .timeout_config(realtime_client::sdk::timeouts())
        .retry_config(realtime_client::sdk::retries())
        .load()
        .await;
    Wiring::new(&Config::from_env()).with_sdk(sdk)
}

#[tokio::main]
async fn main() {
    realtime::runtime::telemetry::init();
    match Cli::parse().command {
        Command::Token(options) => token(options.user, options.ttl),
        Command::Table => table().await,
        Command::Migrate => migrate().await,
        Command::Relay => {
            let relay = or_exit(anywhere().await.relay().await);
            tokio::select! {
                () = relay.run() => {}
                () = wait_for_signal() => tracing::info!("relay stopping"),
            }
        }
        Command::Dev(options) => dev(options).await,
    }
}

/// `token`: a token for `user`, signed with `JWT_SECRET` (the development one when unset).
fn token(user: uuid::Uuid, ttl: u64) {
    let config = Config::from_env();
    let config = if config.get(realtime::runtime::config::JWT_SECRET).is_none() {
        config.with(realtime::runtime::config::JWT_SECRET, DEV_JWT_SECRET)
    } else {
        config
    };
    let jwt: JwtConfig = or_exit(config.read());
    println!("{}", realtime::connection::auth::mint(&jwt, user, ttl));
}

/// `table`: create the connections table if it is missing.
async fn table() {
    let store = or_exit(anywhere().await.dynamo_store().await);
    let table = store.table();
    match realtime::aws::dynamo::ensure_table(store.client(), table).await {
        Ok(created) => tracing::info!(table, created, "connections table ready"),
        Err(error) => {
            tracing::error!(%error, table, "cannot create the connections table");
            std::process::exit(1);
        }
    }
}

/// `migrate`: apply the migrations to `DATABASE_URL`.
async fn migrate() {
    let config = Config::from_env();
    let url = or_exit(realtime::settings::database_url(&config)).to_owned();
    match realtime::postgres::migrate(&url).await {
        Ok(()) => tracing::info!(
            table = realtime::postgres::MIGRATIONS_TABLE,
            "migrations applied"
        ),
        Err(error) => {
            tracing::error!(%error, "migrations failed");
            std::process::exit(1);
        }
    }
}

/// `dev`: the dev server, until a signal; then every socket is closed with 1001.
async fn dev(options: devserver::cli::DevOptions) {
    let server = or_exit(DevServer::new(options, Config::from_env()).await);
    let summary = server.summary.clone();
    let running = match server.start().await {
        Ok(r) => r,
        Err(error) => {
            tracing::error!(%error, "cannot listen");
            std::process::exit(1);
        }
    };
    eprintln!("{}", banner(&running, &summary));
    wait_for_signal().await;
    tracing::info!("shutting down: closing sockets with 1001");
    running.shutdown().await;
}

/// What the dev server prints when it is ready: where everything is, and what it runs with.
fn banner(running: &devserver::Running, summary: &devserver::server::Summary) -> String {
    let addr = running.addr;
    let stage = &running.app.options.stage;
    let secret = if summary.dev_secret {
        "the DEVELOPMENT secret (never deploy it; set JWT_SECRET to use your own)"
    } else {
        "JWT_SECRET from the environment"
    };
    let database = match std::env::var(realtime::runtime::config::DATABASE_URL) {
        Ok(url) if !has_password(&url) => format!("{url}   (psql \"{url}\")"),
        Ok(_) => "DATABASE_URL from the environment (it holds a password: not shown)".to_owned(),
        Err(_) => "none (set DATABASE_URL, or install Postgres 15 for make dev)".to_owned(),
    };
    let (http, ws) = match running.tls {
        Some(_) => ("https", "wss"),
        None => ("http", "ws"),
    };
    let tls = match &running.tls {
        Some(tls) => format!(
            "\x20 TLS CA          {ca}   (AWS_CA_BUNDLE={ca}; curl --cacert {ca}; plain HTTP and WebSocket still answered)\n",
            ca = tls.ca_path.display()
        ),
        None => String::new(),
    };
    format!(
        "\nDevHive Realtime dev server\n\
         \x20 Console         {http}://{addr}/\n\
         \x20 WebSocket       {ws}://{addr}/?token=TOKEN&project_id=PROJECT   (also /api/v1/messages/ws, /{stage})\n\
         \x20 Management API  {http}://{addr}/{stage}/@connections/ID   (WEBSOCKET_ENDPOINT={http}://{addr}/{stage}; also without /{stage})\n\
         \x20 Invoke API      AWS_ENDPOINT_URL_LAMBDA={http}://{addr} BROADCASTER_FUNCTION_NAME={broadcaster}\n\
         \x20 Status          {http}://{addr}/api/v1/projects/PROJECT/ws/status\n{tls}\
         \x20 Store           {store}\n\
         \x20 Membership      {membership}\n\
         \x20 Relay           {relay}\n\
         \x20 Database        {database}\n\
         \x20 Hosts           {hosts}   (others get 421; --allow-host NAME)\n\
         \x20 Tokens          signed with {secret}\n\
         \x20 Get a token     TOKEN=$({exe} token --user $(cat /proc/sys/kernel/random/uuid))\n",
        broadcaster = running.app.broadcaster_name,
        exe = std::env::args()
            .next()
            .unwrap_or_else(|| "devhive-realtime".into()),
        store = summary.store,
        membership = summary.membership,
        relay = summary.relay,
        hosts = running.app.hosts.describe(),
    )
}

/// Whether a connection URL carries a password (`scheme://user:password@host`).
fn has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
