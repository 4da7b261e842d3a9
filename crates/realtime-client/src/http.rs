//! The HTTP client every AWS SDK client here uses: HTTP/1.1 over rustls, one connection pool
//! per SDK configuration.
//!
//! Why not the SDK's default client: it always links an HTTP/2 stack (`h2`, hyper's and
//! hyper-util's HTTP/2 halves) that no call here needs, since DynamoDB, the API Gateway
//! Management API and Lambda Invoke all speak HTTP/1.1. Leaving it out is the largest single
//! cut in each Lambda's `bootstrap` (BENCHMARKS.md, artifacts). Behaviour the SDK relies on is
//! kept: the connect timeout from the client's timeout configuration, TCP_NODELAY, pooled
//! keep-alive connections, the system's CA certificates, and errors classified (timeout, I/O,
//! user, other) so the SDK's retry policy treats them as it treats its own client's.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

type BoxError = Box<dyn StdError + Send + Sync>;

/// A new client (one connection pool per connect timeout) for the SDK clients of one tokio
/// runtime to share: build it once per process start, like the SDK configuration
/// (`realtime::runtime::config::sdk_config`, [`crate::Publisher::from_env`]). Not a process-wide static: a pooled connection is driven by
/// a task on the runtime that opened it, and fails once that runtime is gone. The system's CA
/// certificates are read once per process, on the first call.
pub fn client() -> SharedHttpClient {
    client_with_tls(system_tls())
}

/// [`client`] trusting `extra` certificate authorities besides the system's and
/// `AWS_CA_BUNDLE`'s: the dev server's own clients of its `--tls` address.
pub fn client_trusting(extra: Vec<rustls::pki_types::CertificateDer<'static>>) -> SharedHttpClient {
    client_with_tls(tls_config_trusting(extra))
}

/// [`client`] with a TLS configuration of [`tls_config_trusting`], for a process that also
/// hands the same configuration to a [`RawClient`] (the certificates are read once).
pub fn client_with_tls(tls: rustls::ClientConfig) -> SharedHttpClient {
    SharedHttpClient::new(Http1Client {
        tls,
        connectors: Mutex::default(),
    })
}

/// The TLS configuration of [`client`], trusting `extra` certificate authorities too: the
/// process's one shared configuration when `extra` is empty, a new one (the system's
/// certificates read again) otherwise.
pub fn tls_config_trusting(
    extra: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> rustls::ClientConfig {
    if extra.is_empty() {
        system_tls()
    } else {
        tls_config_with(extra)
    }
}

/// The system's and `AWS_CA_BUNDLE`'s authorities, read once per process.
fn system_tls() -> rustls::ClientConfig {
    static TLS: OnceLock<rustls::ClientConfig> = OnceLock::new();
    TLS.get_or_init(tls_config).clone()
}

/// An [`HttpClient`] handing out one [`Http1Connector`] (one pool) per connect timeout.
#[derive(Debug)]
struct Http1Client {
    tls: rustls::ClientConfig,
    connectors: Mutex<HashMap<Option<Duration>, SharedHttpConnector>>,
}

/// The same pool of keep-alive HTTP/1.1 connections as [`client`]'s (rustls, the same CA
/// certificates, TCP_NODELAY, the connect timeout), for a caller that builds and signs its own
/// requests: the lean `PostToConnection` (`realtime::aws::lean_sender`).
///
/// It holds at most `max_open` connections open at once (a permit per connection, for the
/// connection's life): a request that finds none idle and the cap reached waits for one to
/// come back to the pool instead of opening (over TLS: handshaking) another. Without a cap,
/// a burst of requests opens a connection for every request that finds none idle at that
/// instant, more than the requests in flight (BENCHMARKS.md, "The cost of one delivery").
#[derive(Debug, Clone)]
pub struct RawClient(Http1Connector);

impl RawClient {
    pub fn new(connect_timeout: Option<Duration>, max_open: Option<usize>) -> Self {
        Self::with_tls(system_tls(), connect_timeout, max_open)
    }

    /// [`RawClient::new`] with the caller's own TLS configuration: one of
    /// [`tls_config_trusting`] (the dev server's, trusting its `--tls` authority), or the
    /// bench's, measuring handshakes with resumption off.
    pub fn with_tls(
        tls: rustls::ClientConfig,
        connect_timeout: Option<Duration>,
        max_open: Option<usize>,
    ) -> Self {
        RawClient(Http1Connector::capped(tls, connect_timeout, max_open))
    }

    /// Send `request`; the response's status and body, read to its end so that the
    /// connection goes back to the pool. Errors are classified as for the SDK's calls.
    pub async fn send(
        &self,
        request: http::Request<SdkBody>,
    ) -> Result<(http::StatusCode, Vec<u8>), ConnectorError> {
        use hyper::body::Body;
        let response = self.0.client.request(request).await.map_err(classify)?;
        let status = response.status();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| ConnectorError::io(Box::new(e)))?;
            if let Ok(data) = frame.into_data() {
                bytes.extend_from_slice(&data);
            }
        }
        Ok((status, bytes))
    }
}

/// rustls with the platform's CA certificates (`SSL_CERT_FILE`/`SSL_CERT_DIR` or the system
/// store) and those of `AWS_CA_BUNDLE` ([`crate::trust::ca_bundle`]). With none found, plain
/// `http://` endpoints (the dev server) still work and an `https://` request fails its
/// handshake (unknown issuer) rather than the process failing.
fn tls_config() -> rustls::ClientConfig {
    tls_config_with(Vec::new())
}

fn tls_config_with(extra: Vec<rustls::pki_types::CertificateDer<'static>>) -> rustls::ClientConfig {
    let mut found = rustls_native_certs::load_native_certs();
    found.certs.extend(crate::trust::ca_bundle());
    found.certs.extend(extra);
    for err in &found.errors {
        tracing::warn!(error = %err, "could not read a CA certificate source");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("no CA certificates found; https endpoints will fail their handshake");
    }
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl HttpClient for Http1Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let connect_timeout = settings.connect_timeout();
        let mut connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        connectors
            .entry(connect_timeout)
            .or_insert_with(|| {
                SharedHttpConnector::new(Http1Connector::new(self.tls.clone(), connect_timeout))
            })
            .clone()
    }
}

/// One pool of keep-alive HTTP/1.1 connections, `https://` and `http://`.
#[derive(Debug, Clone)]
struct Http1Connector {
    client: Client<crate::open_cap::Capped<HttpsConnector<TcpConnector>>, SdkBody>,
}

impl Http1Connector {
    fn new(tls: rustls::ClientConfig, connect_timeout: Option<Duration>) -> Self {
        Self::capped(tls, connect_timeout, None)
    }

    /// At most `max_open` connections open at once, when given.
    fn capped(
        tls: rustls::ClientConfig,
        connect_timeout: Option<Duration>,
        max_open: Option<usize>,
    ) -> Self {
        let mut tcp = TcpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(connect_timeout);
        tcp.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(crate::open_cap::Capped::new(https, max_open));
        Http1Connector { client }
    }
}

impl HttpConnector for Http1Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(err) => return HttpConnectorFuture::ready(Err(ConnectorError::user(err.into()))),
        };
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let response = client.request(request).await.map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|err| ConnectorError::other(err.into(), None))
        })
    }
}

/// Sort a failed request the way the SDK's retry policy expects: timeouts and I/O failures
/// (refused, reset, a pooled connection closed under us) are transient and retried; a
/// malformed request is the caller's error and is not.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return if io.kind() == std::io::ErrorKind::TimedOut {
                ConnectorError::timeout(Box::new(err))
            } else {
                ConnectorError::io(Box::new(err))
            };
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return ConnectorError::timeout(Box::new(err));
            }
            if h.is_user() {
                return ConnectorError::user(Box::new(err));
            }
            if h.is_closed() || h.is_canceled() || h.is_incomplete_message() {
                return ConnectorError::io(Box::new(err));
            }
        }
        source = e.source();
    }
    if err.is_connect() {
        return ConnectorError::io(Box::new(err));
    }
    let boxed: BoxError = Box::new(err);
    ConnectorError::other(boxed, Some(ErrorKind::TransientError))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn request(url: &str) -> HttpRequest {
        let request = http::Request::builder()
            .uri(url)
            .body(SdkBody::from("ping"))
            .unwrap();
        HttpRequest::try_from(request).unwrap()
    }

    fn connector() -> Http1Connector {
        Http1Connector::new(tls_config(), Some(Duration::from_secs(2)))
    }

    /// An HTTP/1.1 server answering every request with 200 and an empty JSON object; counts
    /// the connections it accepted and the requests it answered.
    async fn counting_server() -> (std::net::SocketAddr, Arc<[AtomicUsize; 2]>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts: Arc<[AtomicUsize; 2]> = Arc::default();
        let counted = counts.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counted[0].fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer(socket, counted.clone()));
            }
        });
        (addr, counts)
    }

    async fn answer(
        mut socket: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
        counts: Arc<[AtomicUsize; 2]>,
    ) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = socket.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() < end + 4 + length {
                    break;
                }
                buf.drain(..end + 4 + length);
                counts[1].fetch_add(1, Ordering::SeqCst);
                let reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: 2\r\n\r\n{}";
                socket.write_all(reply).await.unwrap();
            }
        }
    }

    fn dynamodb(addr: std::net::SocketAddr, http: SharedHttpClient) -> aws_sdk_dynamodb::Client {
        let sdk = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(format!("http://{addr}"))
            .http_client(http)
            .build();
        aws_sdk_dynamodb::Client::from_conf(sdk)
    }

    #[tokio::test]
    async fn sdk_clients_share_one_pooled_connection() {
        let (addr, counts) = counting_server().await;
        let http = client();
        for _ in 0..2 {
            let client = dynamodb(addr, http.clone());
            for _ in 0..3 {
                let tables = client.list_tables().send().await.unwrap();
                assert!(tables.table_names().is_empty());
            }
        }
        assert_eq!(counts[1].load(Ordering::SeqCst), 6, "requests answered");
        assert_eq!(counts[0].load(Ordering::SeqCst), 1, "connections opened");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_capped_raw_client_opens_no_more_connections_than_its_cap() {
        let (addr, counts) = counting_server().await;
        let raw = RawClient::new(Some(Duration::from_secs(2)), Some(3));
        let posts = (0..60).map(|_| {
            let raw = raw.clone();
            tokio::spawn(async move {
                let request = http::Request::post(format!("http://{addr}/"))
                    .body(SdkBody::from("{}"))
                    .unwrap();
                raw.send(request).await.unwrap().0
            })
        });
        for post in posts.collect::<Vec<_>>() {
            assert_eq!(post.await.unwrap(), http::StatusCode::OK);
        }
        assert_eq!(counts[1].load(Ordering::SeqCst), 60, "requests answered");
        assert!(
            counts[0].load(Ordering::SeqCst) <= 3,
            "connections opened: {}",
            counts[0].load(Ordering::SeqCst)
        );
    }

    /// A certificate for `localhost` (self-signed, valid until 2126) and its key, made with
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 36500 -nodes
    /// -subj /CN=localhost -addext subjectAltName=DNS:localhost
    /// -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth`.
    const CERT: &[u8] = include_bytes!("../testdata/localhost.cert.pem");
    const KEY: &[u8] = include_bytes!("../testdata/localhost.key.pem");

    /// An HTTPS server on 127.0.0.1 with the `localhost` certificate, answering each request
    /// as [`counting_server`] does.
    async fn tls_server() -> (u16, Arc<[AtomicUsize; 2]>) {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(CERT).unwrap()],
                PrivateKeyDer::from_pem_slice(KEY).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts: Arc<[AtomicUsize; 2]> = Arc::default();
        let counted = counts.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counted[0].fetch_add(1, Ordering::SeqCst);
                if let Ok(tls) = acceptor.accept(socket).await {
                    tokio::spawn(answer(tls, counted.clone()));
                }
            }
        });
        (port, counts)
    }

    fn trusting_the_test_certificate() -> rustls::ClientConfig {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(CERT).unwrap())
            .unwrap();
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth()
    }

    #[tokio::test]
    async fn https_requests_verify_the_server_and_reuse_the_connection() {
        let (port, counts) = tls_server().await;
        let url = format!("https://localhost:{port}/x");
        let trusting = Http1Connector::new(trusting_the_test_certificate(), None);
        for _ in 0..2 {
            let response = trusting.call(request(&url)).await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
        }
        assert_eq!(counts[1].load(Ordering::SeqCst), 2, "requests answered");
        assert_eq!(
            counts[0].load(Ordering::SeqCst),
            1,
            "TLS connections opened"
        );

        // The same server with only the system's CA certificates: refused, nothing answered.
        let system = Http1Connector::new(tls_config(), None);
        assert!(system.call(request(&url)).await.is_err());
        assert_eq!(counts[1].load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refused_connection_is_a_retryable_io_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = connector()
            .call(request(&format!("http://{addr}/x")))
            .await
            .unwrap_err();
        assert!(err.is_io(), "{err:?}");
    }

    #[tokio::test]
    async fn connection_closed_without_answer_is_a_retryable_io_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut chunk = [0u8; 1024];
            let _ = socket.read(&mut chunk).await;
            // dropped here: the connection closes with no response
        });
        let err = connector()
            .call(request(&format!("http://{addr}/x")))
            .await
            .unwrap_err();
        assert!(err.is_io(), "{err:?}");
    }
}
