//! Which certificate authorities the project's HTTP client trusts besides the system's: those
//! of the PEM file `AWS_CA_BUNDLE` names, as the AWS CLI and the other SDKs read it (the dev
//! server's `--tls` CA is one).

/// The variable naming a PEM file of certificate authorities to trust besides the system's,
/// as the AWS CLI and the other SDKs read it. The Rust SDK does not read it (aws-sdk-rust
/// issue #1362) and its clients here use the project's HTTP client anyway
/// ([`crate::http`]), which trusts these certificates in every process: the functions, the
/// relay, publishers, the bench. The dev server's `--tls` CA is one.
pub const AWS_CA_BUNDLE: &str = "AWS_CA_BUNDLE";

/// The certificates of the file `AWS_CA_BUNDLE` names (none when unset). A file that cannot
/// be read or holds no certificate is logged, and nothing is added: `https://` endpoints it
/// was meant for then fail their handshake (unknown issuer) rather than the process failing.
pub fn ca_bundle() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let Some(path) = std::env::var(AWS_CA_BUNDLE)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    else {
        return Vec::new();
    };
    match read_ca_bundle(std::path::Path::new(&path)) {
        Ok(certs) => certs,
        Err(error) => {
            tracing::warn!(%error, path, "AWS_CA_BUNDLE: no certificate added");
            Vec::new()
        }
    }
}

/// The certificates of a PEM file; an error when it cannot be read or holds none.
pub fn read_ca_bundle(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_bundle_yields_its_certificates_and_a_bad_one_an_error() {
        let dir = std::env::temp_dir().join(format!("ca-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = include_str!("../testdata/localhost.cert.pem");
        let two = dir.join("two.pem");
        std::fs::write(&two, format!("{cert}{cert}")).unwrap();
        assert_eq!(read_ca_bundle(&two).unwrap().len(), 2);
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        assert!(
            read_ca_bundle(&empty)
                .unwrap_err()
                .contains("holds no certificate")
        );
        assert!(read_ca_bundle(&dir.join("missing.pem")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
