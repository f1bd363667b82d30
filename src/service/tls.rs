//! TLS for the signing service and its client (rustls, with the `ring`
//! provider named here rather than a process-wide default): TLS 1.3 only;
//! on the service, a client certificate is required and verified against
//! the configured CA(s) (chain, dates, key usage) by the handshake itself;
//! the client's identity is its certificate's subject (RFC 4514) and the
//! SHA-256 of its SubjectPublicKeyInfo.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use der::{Decode, Encode};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Who a TLS client is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertIdentity {
    /// The certificate's subject, as RFC 4514 writes it.
    pub subject: String,
    /// SHA-256 of the SubjectPublicKeyInfo (DER), lowercase hex.
    pub spki_sha256: String,
}

const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file (at least one).
fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{}: no certificate in the file", path.display());
    }
    Ok(certs)
}

fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        anyhow::anyhow!(
            "{}: no private key read ({e}); PKCS#8, PKCS#1 or SEC1 in PEM is needed",
            path.display()
        )
    })
}

fn roots(path: &Path) -> anyhow::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots
            .add(cert)
            .with_context(|| format!("{}: a CA certificate that cannot be used", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// The service's TLS: TLS 1.3 only, client certificates from `client_ca`
/// required, ALPN h2 and http/1.1.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> anyhow::Result<Arc<ServerConfig>> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(client_ca)?, provider())
        .build()
        .with_context(|| format!("{}: cannot verify clients with it", client_ca.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(cert)?, private_key(key)?)
        .with_context(|| {
            format!(
                "{} and {}: not a certificate and its key",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The client's TLS: TLS 1.3 only, the service verified against `ca`, and
/// this client's certificate when given.
pub fn client_config(
    ca: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> anyhow::Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca)?);
    let mut config = match (cert, key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .with_context(|| {
                format!(
                    "{} and {}: not a certificate and its key",
                    cert.display(),
                    key.display()
                )
            })?,
        (None, None) => builder.with_no_client_auth(),
        _ => anyhow::bail!("a client certificate needs its key, and a key its certificate"),
    };
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The identity in a DER certificate.
pub fn cert_identity(der: &[u8]) -> anyhow::Result<CertIdentity> {
    let cert = x509_cert::Certificate::from_der(der).context("not an X.509 certificate")?;
    let tbs = cert.tbs_certificate();
    let spki = tbs
        .subject_public_key_info()
        .to_der()
        .context("the certificate's public key")?;
    Ok(CertIdentity {
        subject: tbs.subject().to_string(),
        spki_sha256: hex::encode(Sha256::digest(&spki)),
    })
}

/// The identity of an accepted connection's client (its end-entity
/// certificate, which the handshake verified).
pub fn peer_identity(conn: &ServerConnection) -> Option<CertIdentity> {
    let cert = conn.peer_certificates()?.first()?;
    cert_identity(cert.as_ref()).ok()
}

#[cfg(test)]
mod tests;
