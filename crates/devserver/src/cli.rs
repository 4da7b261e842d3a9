//! Command line of `devhive-realtime`. Every flag of `dev` is also an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use uuid::Uuid;

/// Where the page and the client live unless `--web-dir` says otherwise: the repository's
/// `clients/web`, as the dev server runs from a checkout.
pub const DEFAULT_WEB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/web");
#[derive(Debug, Parser)]
#[command(
    name = "devhive-realtime",
    version,
    about = "DevHive Realtime: local gateway and tools"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of `Dev` costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local WebSocket API, Management API and status endpoint over the Lambda handlers.
    Dev(DevOptions),
    /// Print a JWT for a user, signed with JWT_SECRET (default: the development secret).
    Token(TokenOptions),
    /// Create the connections table CONNECTIONS_TABLE if missing (local DynamoDB, for `make watch`).
    Table,
    /// Apply the Postgres migrations (tables, notify_cache_invalidation(), triggers) to DATABASE_URL.
    Migrate,
    /// Relay Postgres notifications to the broadcaster Lambda (DATABASE_URL, BROADCASTER_FUNCTION_NAME,
    /// AWS credentials). Runs until stopped.
    Relay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    Memory,
    Dynamodb,
}

/// How the dev server's own broadcaster (relay, Invoke API) reaches the sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Delivery {
    /// PostToConnection over HTTP(S) to this server's Management API, signed and sent by the
    /// deployed broadcaster's sender.
    Http,
    /// The Management API's post called in-process: the same fault injection, limits and
    /// 410s, without the local HTTP round trip and request signing.
    Direct,
}

#[derive(Debug, Clone, Args)]
pub struct DevOptions {
    /// Address to listen on.
    #[arg(long, env = "DEVHIVE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Connection store: memory, or DynamoDB (default when AWS_ENDPOINT_URL_DYNAMODB is set;
    /// the table CONNECTIONS_TABLE, default devhive-connections, is created if missing).
    #[arg(long, env = "DEVHIVE_STORE", value_enum)]
    pub store: Option<StoreKind>,
    /// Stage name, as in wss://host/STAGE (the Management API also answers under /STAGE/@connections).
    #[arg(long, env = "DEVHIVE_STAGE", default_value = "dev")]
    pub stage: String,
    /// Latency added to every Management API call, in milliseconds (API Gateway's round trip).
    #[arg(long, env = "DEVHIVE_POST_LATENCY_MS", default_value_t = 0)]
    pub post_latency_ms: u64,
    /// Probability (0..1) that a Management API call answers 429 LimitExceededException.
    #[arg(long = "fault-429", env = "DEVHIVE_FAULT_429", default_value_t = 0.0, value_parser = probability)]
    pub fault_429: f64,
    /// Probability (0..1) that a Management API call answers 500.
    #[arg(long = "fault-500", env = "DEVHIVE_FAULT_500", default_value_t = 0.0, value_parser = probability)]
    pub fault_500: f64,
    /// Management API requests per second before 429 (API Gateway's account throttle); 0 = unlimited.
    #[arg(long, env = "DEVHIVE_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,
    /// Requests the throttle lets through at once before the rate applies; 0 = half the rate,
    /// API Gateway's account default (10,000/s with bursts of 5,000).
    #[arg(long, env = "DEVHIVE_BURST", default_value_t = 0)]
    pub burst: u32,
    /// Close connections idle for this long (API Gateway: 600 s).
    #[arg(
        long = "idle-timeout-s",
        env = "DEVHIVE_IDLE_TIMEOUT_S",
        default_value_t = 600
    )]
    pub idle_timeout_s: u64,
    /// Items evaluated per DynamoDB query page (0: DynamoDB's 1 MB pages). Tests use it to
    /// spread a project over many pages.
    #[arg(long, env = "DEVHIVE_QUERY_PAGE_LIMIT", default_value_t = 0)]
    pub query_page_limit: u32,
    /// Close connections after this long whatever they do (API Gateway: 7200 s). Each gets
    /// `{"type":"reconnect","reason":"max_duration"}` 5 minutes before (halfway when shorter).
    #[arg(
        long = "max-duration-s",
        env = "DEVHIVE_MAX_DURATION_S",
        default_value_t = 7200
    )]
    pub max_duration_s: u64,
    /// Seconds a client has to send its request head (upgrade included) before it is cut off.
    #[arg(
        long = "handshake-timeout-s",
        env = "DEVHIVE_HANDSHAKE_TIMEOUT_S",
        default_value_t = 10
    )]
    pub handshake_timeout_s: u64,
    /// Asynchronous invocations accepted and not finished before the Invoke API answers 429
    /// TooManyRequestsException (Lambda's event queue is bounded too).
    #[arg(long, env = "DEVHIVE_INVOKE_QUEUE", default_value_t = 1000)]
    pub invoke_queue: usize,
    /// Megabytes of payload those invocations may hold before 429.
    #[arg(long, env = "DEVHIVE_INVOKE_QUEUE_MB", default_value_t = 64)]
    pub invoke_queue_mb: usize,
    /// Probability (0..1) that an asynchronous invocation is delivered twice (Lambda's
    /// asynchronous invocation is at least once).
    #[arg(long = "invoke-duplicate-rate", env = "DEVHIVE_INVOKE_DUPLICATE_RATE", default_value_t = 0.0, value_parser = probability)]
    pub invoke_duplicate_rate: f64,
    /// Each asynchronous invocation waits a random time up to this many milliseconds before it
    /// runs, so that invocations run late and out of order (as Lambda's event queue may).
    #[arg(
        long = "invoke-delay-ms",
        env = "DEVHIVE_INVOKE_DELAY_MS",
        default_value_t = 0
    )]
    pub invoke_delay_ms: u64,
    /// Probability (0..1) that an attempt of an asynchronous invocation fails with a function
    /// error before its handler runs.
    #[arg(long = "invoke-error-rate", env = "DEVHIVE_INVOKE_ERROR_RATE", default_value_t = 0.0, value_parser = probability)]
    pub invoke_error_rate: f64,
    /// A failed asynchronous invocation is retried twice, as Lambda does (about 1 and 2 minutes
    /// later): after this many milliseconds and after twice it; then it is dead-lettered.
    #[arg(
        long = "invoke-retry-ms",
        env = "DEVHIVE_INVOKE_RETRY_MS",
        default_value_t = 60_000
    )]
    pub invoke_retry_ms: u64,
    /// An asynchronous invocation older than this is dead-lettered instead of run (the
    /// template's MaximumEventAgeInSeconds).
    #[arg(
        long = "invoke-max-age-s",
        env = "DEVHIVE_INVOKE_MAX_AGE_S",
        default_value_t = 300
    )]
    pub invoke_max_age_s: u64,
    /// Probability (0..1) that a closed connection's `$disconnect` is never run (API Gateway
    /// runs it on a best-effort basis).
    #[arg(long = "disconnect-loss-rate", env = "DEVHIVE_DISCONNECT_LOSS_RATE", default_value_t = 0.0, value_parser = probability)]
    pub disconnect_loss_rate: f64,
    /// Seed of the injected faults (Management API and Invoke), for a reproducible run; 0 seeds
    /// from the clock.
    #[arg(long = "fault-seed", env = "DEVHIVE_FAULT_SEED", default_value_t = 0)]
    pub fault_seed: u64,
    /// How the in-process broadcaster delivers: http (as on AWS) or direct (no local HTTP hop).
    #[arg(long, env = "DEVHIVE_DELIVERY", value_enum, default_value_t = Delivery::Http)]
    pub delivery: Delivery,
    /// Origins allowed to call the status endpoint from a browser (comma-separated, `*` for any).
    #[arg(long, env = "DEVHIVE_CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,
    /// Where the dev console's page and the built web client are (`clients/web`).
    #[arg(long, env = "DEVHIVE_WEB_DIR", default_value = DEFAULT_WEB_DIR)]
    pub web_dir: std::path::PathBuf,
    /// Another name (or address) requests may be addressed to, besides loopback and the bound
    /// address: every request whose `Host` is not one of them gets 421, so that web pages cannot
    /// reach the server through DNS rebinding. Repeatable; the variable takes a comma-separated
    /// list. `sam local`'s containers need `--allow-host host.docker.internal`.
    #[arg(
        long = "allow-host",
        env = "DEVHIVE_ALLOW_HOSTS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allow_hosts: Vec<String>,
    /// Let `GET /console/token` mint tokens when JWT_SECRET is not the development secret
    /// (they are then valid wherever that secret is).
    #[arg(long, env = "DEVHIVE_CONSOLE_TOKENS_ANY_SECRET")]
    pub console_tokens_any_secret: bool,
    /// Serve HTTPS and WSS (as API Gateway does) on the same address, with a certificate
    /// authority made at start; plain HTTP is still answered there. Clients trust the CA
    /// written to --tls-ca-out (AWS_CA_BUNDLE for the AWS SDK clients).
    #[arg(long, env = "DEVHIVE_TLS", value_parser = clap::builder::FalseyValueParser::new())]
    pub tls: bool,
    /// Where `--tls` writes its CA certificate (PEM).
    #[arg(long, env = "DEVHIVE_TLS_CA_OUT", default_value = crate::tls::DEFAULT_CA_OUT)]
    pub tls_ca_out: std::path::PathBuf,
}

impl Default for DevOptions {
    fn default() -> Self {
        DevOptions {
            addr: ([127, 0, 0, 1], 8080).into(),
            store: None,
            stage: "dev".into(),
            post_latency_ms: 0,
            fault_429: 0.0,
            fault_500: 0.0,
            rate_limit: 0,
            burst: 0,
            idle_timeout_s: 600,
            query_page_limit: 0,
            max_duration_s: 7200,
            delivery: Delivery::Http,
            handshake_timeout_s: 10,
            invoke_queue: 1000,
            invoke_queue_mb: 64,
            invoke_duplicate_rate: 0.0,
            invoke_delay_ms: 0,
            invoke_error_rate: 0.0,
            invoke_retry_ms: 60_000,
            invoke_max_age_s: 300,
            disconnect_loss_rate: 0.0,
            fault_seed: 0,
            cors_origins: "*".into(),
            web_dir: DEFAULT_WEB_DIR.into(),
            allow_hosts: Vec::new(),
            console_tokens_any_secret: false,
            tls: false,
            tls_ca_out: crate::tls::DEFAULT_CA_OUT.into(),
        }
    }
}

impl DevOptions {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_s)
    }
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_s)
    }
    pub fn max_duration(&self) -> Duration {
        Duration::from_secs(self.max_duration_s)
    }
    /// When the reconnect hint goes out: [`realtime::wire::events::RECONNECT_HINT_LEAD`] before
    /// the maximum duration, or halfway for durations shorter than twice that (tests).
    pub fn reconnect_hint_after(&self) -> Duration {
        let max = self.max_duration();
        max - realtime::wire::events::RECONNECT_HINT_LEAD.min(max / 2)
    }
}

#[derive(Debug, Clone, Args)]
pub struct TokenOptions {
    /// The user id (`sub`).
    #[arg(long)]
    pub user: Uuid,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 24 * 3600)]
    pub ttl: u64,
}

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not between 0 and 1"))
    }
}
