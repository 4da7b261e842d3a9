//! The `ConnectionSender` adapter for AWS: the API Gateway Management API's `PostToConnection`
//! and `DeleteConnection`, each one SigV4-signed HTTP/1.1 request built here and signed with
//! `aws-sigv4` (the signer the SDK itself uses), sent on a pool of kept-alive connections
//! ([`realtime_client::http::RawClient`]). What it leaves out is the SDK's per-request
//! pipeline: endpoint rules, interceptors, the identity cache, retry and stalled-stream
//! bookkeeping, the request and response models (docs/performance.md). Every answer, of
//! this sender and of the dev server's in-process one, is classified once, by [`classify`]:
//! 2xx delivered, 410 gone, 429 throttled, 5xx retried, anything else failed; timeouts and
//! I/O errors retried.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::body::SdkBody;
use realtime_client::http::RawClient;

use crate::delivery::sender::{ConnectionSender, PostOutcome};
use crate::settings::{ConfigError, Env, required};

/// The Management API's base URL: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
pub const WEBSOCKET_ENDPOINT: &str = "WEBSOCKET_ENDPOINT";
/// The Management API's signing name.
const SERVICE: &str = "execute-api";
/// One request's limit: a post or a close not answered in it is retried by the fan-out.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The sender's settings: `WEBSOCKET_ENDPOINT` (required, an http(s) URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub endpoint: String,
}

impl crate::settings::Settings for Settings {
    const VARIABLES: &'static [&'static str] = &[WEBSOCKET_ENDPOINT];

    fn read(env: &dyn Env) -> Result<Self, ConfigError> {
        let url = required(
            env,
            WEBSOCKET_ENDPOINT,
            "the API Gateway Management API URL, https://{api}.execute-api.{region}.amazonaws.com/{stage}",
        )?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError(format!(
                "{WEBSOCKET_ENDPOINT} must be an http(s) URL, not {url:?}"
            )));
        }
        Ok(Settings {
            endpoint: url.to_owned(),
        })
    }
}

/// `PostToConnection` and `DeleteConnection`, signed and sent without the SDK's pipeline.
pub struct ManagementApiSender {
    /// `https://{api}.execute-api.{region}.amazonaws.com/{stage}`, no trailing slash.
    base: String,
    region: String,
    identity: Identity,
    http: RawClient,
}

impl ManagementApiSender {
    /// A sender for the API at `endpoint` with the region and credentials of `sdk`; an error
    /// when either is missing. Credentials are read once: on Lambda they are the environment's
    /// for the sandbox's lifetime.
    /// At most `max_open` connections are open at once: the fan-out's concurrency, so that a
    /// cold invocation opens (and handshakes) no more connections than it has posts in flight.
    pub async fn for_endpoint(
        sdk: &aws_types::SdkConfig,
        endpoint: &str,
        max_open: usize,
    ) -> Result<Self, String> {
        let http = RawClient::new(Some(CONNECT_TIMEOUT), Some(max_open));
        Self::for_endpoint_with(sdk, endpoint, http).await
    }

    /// [`ManagementApiSender::for_endpoint`] sending through `http` (the dev server's,
    /// trusting its own certificate authority).
    pub async fn for_endpoint_with(
        sdk: &aws_types::SdkConfig,
        endpoint: &str,
        http: RawClient,
    ) -> Result<Self, String> {
        let region = sdk.region().ok_or("no region")?.to_string();
        let provider = sdk.credentials_provider().ok_or("no credentials")?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("credentials: {e}"))?;
        Ok(Self::with(endpoint, region, credentials.into(), http))
    }

    /// A sender for a local Management API (the dev server): the fixed local region and
    /// credentials, the system's trusted certificates, nothing read from the environment.
    pub fn local(endpoint: &str) -> Self {
        Self::local_with(endpoint, RawClient::new(Some(CONNECT_TIMEOUT), None))
    }

    /// [`ManagementApiSender::local`] sending through `http` (the dev server's own
    /// broadcaster: its pool, trusting the `--tls` authority).
    pub fn local_with(endpoint: &str, http: RawClient) -> Self {
        use realtime_client::sdk::{LOCAL_REGION, local_credentials};
        Self::with(
            endpoint,
            LOCAL_REGION.to_string(),
            local_credentials().into(),
            http,
        )
    }

    fn with(endpoint: &str, region: String, identity: Identity, http: RawClient) -> Self {
        ManagementApiSender {
            base: endpoint.trim_end_matches('/').to_owned(),
            region,
            identity,
            http,
        }
    }

    /// The signed request of one post at `time`.
    pub fn request(
        &self,
        connection_id: &str,
        payload: &[u8],
        time: SystemTime,
    ) -> Result<http::Request<SdkBody>, String> {
        let mut request = http::Request::post(self.uri(connection_id))
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .header(http::header::CONTENT_LENGTH, payload.len())
            .body(SdkBody::from(payload.to_vec()))
            .map_err(|e| e.to_string())?;
        self.sign(&mut request, payload, time)?;
        Ok(request)
    }

    /// The signed `DeleteConnection` of `connection_id` at `time`.
    pub fn delete_request(
        &self,
        connection_id: &str,
        time: SystemTime,
    ) -> Result<http::Request<SdkBody>, String> {
        let mut request = http::Request::delete(self.uri(connection_id))
            .body(SdkBody::empty())
            .map_err(|e| e.to_string())?;
        self.sign(&mut request, b"", time)?;
        Ok(request)
    }

    fn uri(&self, connection_id: &str) -> String {
        format!("{}/@connections/{}", self.base, encode(connection_id))
    }

    /// Add SigV4's headers (`x-amz-date`, `x-amz-security-token`, `authorization`) to
    /// `request`, whose body is `payload`.
    pub fn sign<B>(
        &self,
        request: &mut http::Request<B>,
        payload: &[u8],
        time: SystemTime,
    ) -> Result<(), String> {
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(SERVICE)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let uri = request.uri().to_string();
        let headers = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers,
            SignableBody::Bytes(payload),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    /// Send `request` and classify its answer.
    async fn send(&self, request: Result<http::Request<SdkBody>, String>) -> PostOutcome {
        let request = match request {
            Ok(request) => request,
            Err(error) => return PostOutcome::Failed(error),
        };
        match tokio::time::timeout(TIMEOUT, self.http.send(request)).await {
            Ok(Ok((status, body))) => classify(status.as_u16(), &body),
            // Connect, TLS and I/O errors and timeouts are retried, as the SDK's dispatch
            // failures are; the reason names the whole chain (a certificate, a refused
            // connection), not only "io error".
            Ok(Err(error)) => PostOutcome::Retry(
                aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
            ),
            Err(_) => PostOutcome::Retry(format!("no answer in {TIMEOUT:?}")),
        }
    }
}

/// A connection id as one path segment (ids are base64: `=`, `+` and `/` are escaped).
fn encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 8);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A Management API answer (its HTTP status and body) as a [`PostOutcome`]: the one
/// classification every sender uses.
pub fn classify(status: u16, body: &[u8]) -> PostOutcome {
    match status {
        200..=299 => PostOutcome::Delivered,
        410 => PostOutcome::Gone,
        429 => PostOutcome::Throttled,
        500.. => PostOutcome::Retry(format!("HTTP {status}")),
        _ => PostOutcome::Failed(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )),
    }
}

#[async_trait]
impl ConnectionSender for ManagementApiSender {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> PostOutcome {
        self.send(self.request(connection_id, payload, SystemTime::now()))
            .await
    }

    async fn close(&self, connection_id: &str) -> PostOutcome {
        match self
            .send(self.delete_request(connection_id, SystemTime::now()))
            .await
        {
            PostOutcome::Delivered => PostOutcome::Closed,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_apigatewaymanagement::config::{Credentials, Region, SharedCredentialsProvider};
    use aws_sdk_apigatewaymanagement::primitives::Blob;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A Management API on 127.0.0.1 answering each post with the status its connection id
    /// names (`s410` → 410; anything else 200) and sending every request head it read.
    async fn api() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        while buf.len() < end + 4 + length {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.drain(..end + 4 + length);
                        let status = head
                            .split_whitespace()
                            .nth(1)
                            .and_then(|path| path.rsplit("/s").next())
                            .and_then(|s| s.parse::<u16>().ok())
                            .unwrap_or(200);
                        let _ = tx.send(head);
                        let body = r#"{"message":"x"}"#;
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (format!("http://{addr}/dev"), rx)
    }

    fn sdk_config() -> aws_types::SdkConfig {
        aws_types::SdkConfig::builder()
            .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
            .http_client(realtime_client::http::client())
            .region(Region::new("eu-west-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                Some("session-token".to_owned()),
                None,
                "test",
            )))
            .build()
    }

    /// The SDK's own Management API client at `endpoint`, retries off: what this sender's
    /// requests are compared with.
    fn sdk_client(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk_config())
            .endpoint_url(endpoint)
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(config)
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(classify(200, b""), PostOutcome::Delivered);
        assert_eq!(classify(410, b"{}"), PostOutcome::Gone);
        assert_eq!(classify(429, b"{}"), PostOutcome::Throttled);
        assert_eq!(classify(500, b"{}"), PostOutcome::Retry("HTTP 500".into()));
        assert_eq!(classify(503, b"{}"), PostOutcome::Retry("HTTP 503".into()));
        assert!(matches!(classify(403, b"denied"), PostOutcome::Failed(m) if m.contains("denied")));
        assert!(matches!(classify(400, b""), PostOutcome::Failed(_)));
    }

    #[tokio::test]
    async fn posts_and_closes_get_each_answer_classified() {
        let (endpoint, mut heads) = api().await;
        let sender = ManagementApiSender::for_endpoint(&sdk_config(), &endpoint, 4)
            .await
            .unwrap();
        for (id, expected) in [
            ("s200", PostOutcome::Delivered),
            ("s410", PostOutcome::Gone),
            ("s429", PostOutcome::Throttled),
            ("s503", PostOutcome::Retry("HTTP 503".into())),
        ] {
            assert_eq!(sender.post(id, b"{}").await, expected, "{id}");
        }
        assert!(matches!(
            sender.post("s403", b"{}").await,
            PostOutcome::Failed(_)
        ));
        let head = heads.recv().await.unwrap();
        assert!(
            head.starts_with("POST /dev/@connections/s200 HTTP/1.1"),
            "{head}"
        );
        while heads.try_recv().is_ok() {}
        assert_eq!(sender.close("s200").await, PostOutcome::Closed);
        assert_eq!(sender.close("s410").await, PostOutcome::Gone);
        assert_eq!(sender.close("s429").await, PostOutcome::Throttled);
        let head = heads.recv().await.unwrap();
        assert!(
            head.starts_with("DELETE /dev/@connections/s200 HTTP/1.1"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("authorization: aws4-hmac-sha256 credential=akidexample/"),
            "{head}"
        );
    }

    /// The SDK's own request for a post, and this sender's signature of the same request
    /// at the same time: the same `Authorization`, to the byte.
    #[tokio::test]
    async fn the_signature_is_the_sdks() {
        let (endpoint, mut heads) = api().await;
        let sdk = sdk_client(&endpoint);
        // An id with the characters base64 ids carry, which need escaping in the path.
        let (id, payload) = ("AbC=+/x", br#"{"type":"t","data":{"n":1}}"#);
        sdk.post_to_connection()
            .connection_id(id)
            .data(Blob::new(payload.to_vec()))
            .send()
            .await
            .unwrap();
        let head = heads.recv().await.unwrap();
        let mut lines = head.lines();
        let path = lines
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let authorization = get("authorization").unwrap();
        let signed: Vec<String> = authorization
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .split(';')
            .map(str::to_owned)
            .collect();
        let sender = ManagementApiSender::for_endpoint(&sdk_config(), &endpoint, 4)
            .await
            .unwrap();
        // The sender's own request escapes the id as the SDK did.
        let own = sender.request(id, payload, SystemTime::now()).unwrap();
        assert_eq!(own.uri().path(), path);
        // The SDK's request with only what it signed, signed again here at its time.
        let time = amz_date(&get("x-amz-date").unwrap());
        let mut again =
            http::Request::post(format!("{endpoint}{}", path.trim_start_matches("/dev")));
        for name in &signed {
            if name != "x-amz-date" && name != "x-amz-security-token" {
                again = again.header(name.as_str(), get(name).unwrap());
            }
        }
        let mut again = again.body(()).unwrap();
        sender.sign(&mut again, payload, time).unwrap();
        assert_eq!(
            again.headers()["authorization"].to_str().unwrap(),
            authorization
        );
    }

    /// `20261206T074500Z` as a time.
    fn amz_date(s: &str) -> SystemTime {
        let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
        let (y, m, d) = (n(0..4), n(4..6), n(6..8));
        // Days from 1970-01-01 (the civil-from-days inverse).
        let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * m + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = days * 86_400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15);
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    }
}
