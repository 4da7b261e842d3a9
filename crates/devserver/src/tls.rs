//! `dev --tls`: HTTPS and WSS on the dev server's address, as API Gateway serves them.
//!
//! At every start a new certificate authority and a server certificate it signs are made in
//! memory (ECDSA P-256, aws-lc-rs: the only crypto stack of the workspace). The CA certificate
//! (never its key) is written to `--tls-ca-out` for clients to trust: `AWS_CA_BUNDLE` for the
//! functions, the relay, `realtime-client` and the bench, `curl --cacert`, a browser's
//! authorities. The server certificate names `localhost`, the loopback addresses, the bound
//! address and every `--allow-host`.
//!
//! Each accepted connection is sniffed: a TLS ClientHello (first byte 0x16, a handshake record)
//! is served over TLS, anything else as plain HTTP on the same port, so tools that speak
//! `http://`/`ws://` keep working beside `https://`/`wss://`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Where `--tls-ca-out` writes the CA certificate unless told otherwise.
pub const DEFAULT_CA_OUT: &str = "target/dev-tls/ca.pem";

/// The first byte of a TLS record carrying a handshake message (the ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The dev server's TLS identity for one run.
pub struct DevTls {
    pub acceptor: TlsAcceptor,
    /// The CA certificate, PEM: what clients trust.
    pub ca_pem: String,
    /// Where [`DevTls::ca_pem`] was written.
    pub ca_path: PathBuf,
    handshakes: AtomicU64,
}

impl std::fmt::Debug for DevTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevTls")
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

/// One accepted connection, over TLS or not.
pub enum Accepted {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl DevTls {
    /// A new CA and server certificate for `addr` and `hosts`, the CA written to `ca_out`
    /// (its directory created).
    pub fn generate(addr: SocketAddr, hosts: &[String], ca_out: &Path) -> Result<Self, String> {
        let (ca_pem, chain, key) = certificates(addr, hosts).map_err(|e| e.to_string())?;
        if let Some(dir) = ca_out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(ca_out, &ca_pem)
            .map_err(|e| format!("cannot write the CA to {}: {e}", ca_out.display()))?;
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("TLS configuration: {e}"))?;
        Ok(DevTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_pem,
            ca_path: ca_out.to_owned(),
            handshakes: AtomicU64::new(0),
        })
    }

    /// The CA certificate, parsed, for this process's own clients.
    pub fn ca_der(&self) -> Vec<CertificateDer<'static>> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_slice_iter(self.ca_pem.as_bytes())
            .filter_map(Result::ok)
            .collect()
    }

    /// TLS handshakes completed since start.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// Serve `stream` over TLS when its first byte opens a TLS handshake, plainly otherwise;
    /// the sniff and the handshake both within `timeout`. `None`: closed, timed out or refused.
    pub async fn accept(&self, stream: TcpStream, timeout: Duration) -> Option<Accepted> {
        let work = async {
            let mut first = [0u8; 1];
            let n = stream.peek(&mut first).await.ok()?;
            if n == 0 || first[0] != TLS_HANDSHAKE_RECORD {
                return Some(Accepted::Plain(stream));
            }
            match self.acceptor.accept(stream).await {
                Ok(tls) => {
                    self.handshakes.fetch_add(1, Ordering::Relaxed);
                    Some(Accepted::Tls(Box::new(tls)))
                }
                Err(error) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    None
                }
            }
        };
        tokio::time::timeout(timeout, work).await.ok().flatten()
    }
}

/// The Management API client of the dev server's own broadcaster: the deployed broadcaster's
/// sender (signed requests on a pool of at most `max_open` connections with the TLS
/// configuration `trust`) at `endpoint` (this server, `http://` or `https://`); fixed local
/// region and credentials.
pub fn local_management_sender(
    endpoint: &str,
    trust: rustls::ClientConfig,
    max_open: usize,
) -> realtime::aws::management_api::ManagementApiSender {
    use realtime::aws::management_api::{CONNECT_TIMEOUT, ManagementApiSender};
    use realtime_client::http::RawClient;
    let raw = RawClient::with_tls(trust, Some(CONNECT_TIMEOUT), Some(max_open));
    ManagementApiSender::local_with(endpoint, raw)
}

/// (CA certificate PEM, server chain, server key): the server certificate for `localhost`,
/// 127.0.0.1, ::1, the bound address and `hosts`, signed by a new CA.
fn certificates(
    addr: SocketAddr,
    hosts: &[String],
) -> Result<(String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "DevHive Realtime dev server CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for name in std::iter::once(addr.ip().to_string()).chain(hosts.iter().cloned()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(names)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "DevHive Realtime dev server");
    server.is_ca = IsCa::ExplicitNoCa;
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    Ok((ca_cert.pem(), vec![server_cert.der().clone()], key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    fn verifier(ca_pem: &str) -> Arc<rustls::client::WebPkiServerVerifier> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(
            CertificateDer::pem_slice_iter(ca_pem.as_bytes()).filter_map(Result::ok),
        );
        rustls::client::WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .unwrap()
    }

    fn verifies(
        verifier: &rustls::client::WebPkiServerVerifier,
        chain: &[CertificateDer<'static>],
        name: &str,
    ) -> bool {
        use rustls::client::danger::ServerCertVerifier;
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let now = rustls::pki_types::UnixTime::now();
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], now)
            .is_ok()
    }

    #[test]
    fn the_server_certificate_verifies_against_its_ca_for_every_name_and_no_other() {
        let hosts = ["host.docker.internal".to_owned()];
        let (ca_pem, chain, _) = certificates("10.1.2.3:8080".parse().unwrap(), &hosts).unwrap();
        let trusting = verifier(&ca_pem);
        for name in [
            "localhost",
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "host.docker.internal",
        ] {
            assert!(verifies(&trusting, &chain, name), "{name}");
        }
        assert!(!verifies(&trusting, &chain, "example.com"));
        // Every start makes a new CA: another run's certificate is not trusted.
        let (other_ca, _, _) = certificates("10.1.2.3:8080".parse().unwrap(), &hosts).unwrap();
        assert!(!verifies(&verifier(&other_ca), &chain, "localhost"));
    }

    #[test]
    fn only_the_ca_certificate_is_written() {
        let dir = std::env::temp_dir().join(format!("devhive-tls-{}", uuid::Uuid::new_v4()));
        let ca_out = dir.join("nested").join("ca.pem");
        let tls = DevTls::generate("127.0.0.1:0".parse().unwrap(), &[], &ca_out).unwrap();
        let written = std::fs::read_to_string(&ca_out).unwrap();
        assert_eq!(written, tls.ca_pem);
        assert!(written.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!written.contains("PRIVATE KEY"));
        assert_eq!(tls.ca_der().len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
