//! The processes a benchmark runs: the release dev server (`devhive-realtime dev`) and function
//! binaries, started beside this one, killed on drop, their memory read from `/proc`; and the
//! environment they get (dummy AWS credentials, the services `make bench` started).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .expect("current exe")
        .with_file_name(name)
}

/// A child process killed on drop.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A release function binary (`broadcaster`, `sweeper`, or another build of one) started under
/// a local Runtime API at `runtime_api`, as Lambda starts it (`memory_mb`), posting to the dev
/// server at `addr` over `table`; `extra_env` adds to its environment. Killed on drop.
pub(crate) fn function(
    binary: &std::path::Path,
    memory_mb: u32,
    runtime_api: &str,
    table: &str,
    addr: SocketAddr,
    extra_env: &[(&str, String)],
) -> Proc {
    let name = binary
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut cmd = Command::new(binary);
    cmd.envs(services_env().iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("CONNECTIONS_TABLE", table)
        .env("WEBSOCKET_ENDPOINT", format!("http://{addr}/dev"))
        .env("RUST_LOG", "warn")
        .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("start the {name} (build it with make bench): {e}")),
    )
}

/// How a function reaches the dev server's Management API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// HTTPS, as on AWS: the dev server's `--tls` CA given as `AWS_CA_BUNDLE`.
    Tls,
    /// Plain HTTP to the same server (a labelled comparison row, not what AWS runs).
    Http,
}

impl Transport {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Transport::Tls => "tls",
            Transport::Http => "http",
        }
    }
}

/// A `--tls` dev server's address and CA: a function's way to its Management API.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    pub(crate) ca: PathBuf,
}

impl Endpoint {
    /// The environment of a function posting over `transport`: `WEBSOCKET_ENDPOINT` (and
    /// `AWS_CA_BUNDLE` over TLS). The server answers both on one port.
    pub(crate) fn function_env(&self, transport: Transport) -> Vec<(&'static str, String)> {
        match transport {
            Transport::Tls => vec![
                ("WEBSOCKET_ENDPOINT", format!("https://{}/dev", self.addr)),
                ("AWS_CA_BUNDLE", self.ca.display().to_string()),
            ],
            Transport::Http => vec![("WEBSOCKET_ENDPOINT", format!("http://{}/dev", self.addr))],
        }
    }
}

/// `devhive-realtime dev --tls` with `args`: HTTPS and WSS (and plain HTTP) on one address, its
/// CA written under `target/bench/tls/`.
pub(crate) fn dev_server_tls(args: &[&str], env: &[(&str, String)]) -> (Proc, Endpoint) {
    let ca = std::env::current_dir()
        .unwrap_or_default()
        .join("target/bench/tls")
        .join(format!("{}.pem", uuid::Uuid::new_v4().simple()));
    let ca_arg = ca.display().to_string();
    let mut all = vec!["--tls", "--tls-ca-out", ca_arg.as_str()];
    all.extend_from_slice(args);
    let (proc, addr) = dev_server(&all, env);
    (proc, Endpoint { addr, ca })
}

/// `devhive-realtime dev` with `args`, started and its address read from the banner.
pub(crate) fn dev_server(args: &[&str], env: &[(&str, String)]) -> (Proc, SocketAddr) {
    let mut cmd = Command::new(sibling("devhive-realtime"));
    cmd.arg("dev").args(["--addr", "127.0.0.1:0"]).args(args);
    for var in [
        "DATABASE_URL",
        "MEMBERSHIP",
        "CONNECTIONS_TABLE",
        "JWT_SECRET",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the dev server");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let words = line.split_whitespace();
            if let Some(url) = words
                .filter_map(|w| w.strip_prefix("ws://").or(w.strip_prefix("wss://")))
                .next()
            {
                let addr = url.split('/').next().unwrap_or_default().to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("dev server banner")
        .parse()
        .expect("address");
    (Proc(child), addr)
}

pub(crate) fn services_env() -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID", "bench".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "bench".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("MEMBERSHIP", "none".to_owned()),
    ];
    if let Ok(e) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        env.push(("AWS_ENDPOINT_URL_DYNAMODB", e));
    }
    env
}

/// A fresh migrated database on the Postgres of `admin` with `projects` projects; its URL and
/// the project ids.
pub(crate) async fn database(admin: &str, projects: usize) -> (String, Vec<uuid::Uuid>) {
    let url = realtime::postgres::create_database(
        admin,
        &format!("bench_{}", uuid::Uuid::new_v4().simple()),
    )
    .await
    .expect("database");
    realtime::postgres::migrate(&url).await.expect("migrate");
    let ids: Vec<uuid::Uuid> = (0..projects).map(|_| uuid::Uuid::new_v4()).collect();
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::query("INSERT INTO projects (id, name) SELECT id, 'bench' FROM unnest($1::uuid[]) id")
        .bind(&ids)
        .execute(&mut db)
        .await
        .expect("projects");
    (url, ids)
}

pub(crate) fn require(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run `make bench`, which starts the services"))
}
