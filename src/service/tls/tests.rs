//! The configurations from files, and identities from certificates. The
//! handshakes themselves (a client without a certificate, of another CA,
//! expired, TLS 1.2) are tested end to end through `dnsseal serve` in
//! softhsm-tests/service.rs.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PublicKeyData};

fn ca_and_leaf(dir: &Path) -> (KeyPair, rcgen::Certificate) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "builder");
    leaf.distinguished_name
        .push(DnType::OrganizationName, "Example");
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("leaf.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("leaf.key"), key.serialize_pem()).unwrap();
    (key, cert)
}

#[test]
fn a_certificates_identity_is_its_subject_and_key_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = ca_and_leaf(dir.path());
    let id = cert_identity(cert.der()).unwrap();
    // RFC 4514 writes the last RDN first (as `openssl x509 -noout
    // -subject -nameopt RFC2253` does).
    assert_eq!(id.subject, "O=Example,CN=builder");
    let expected = hex::encode(Sha256::digest(key.subject_public_key_info()));
    assert_eq!(id.spki_sha256, expected);
    assert!(cert_identity(b"not a certificate").is_err());
}

#[test]
fn configurations_are_made_from_files_and_errors_name_them() {
    let dir = tempfile::tempdir().unwrap();
    ca_and_leaf(dir.path());
    let (ca, pem, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("leaf.pem"),
        dir.path().join("leaf.key"),
    );
    let server = server_config(&pem, &key, &ca).unwrap();
    assert_eq!(
        server.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    client_config(&ca, Some(&pem), Some(&key)).unwrap();
    client_config(&ca, None, None).unwrap();
    assert!(client_config(&ca, Some(&pem), None).is_err());

    let missing = dir.path().join("missing.pem");
    let err = format!("{:#}", server_config(&missing, &key, &ca).unwrap_err());
    assert!(err.contains("missing.pem"), "{err}");
    // A "key" file that holds a certificate.
    let err = format!("{:#}", server_config(&pem, &pem, &ca).unwrap_err());
    assert!(
        err.contains("leaf.pem") && err.contains("no private key"),
        "{err}"
    );
    // A CA file without certificates.
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let err = format!(
        "{:#}",
        server_config(&pem, &key, &dir.path().join("empty.pem")).unwrap_err()
    );
    assert!(
        err.contains("empty.pem") && err.contains("no certificate"),
        "{err}"
    );
    // A key that is not the certificate's.
    let other = KeyPair::generate().unwrap();
    std::fs::write(dir.path().join("other.key"), other.serialize_pem()).unwrap();
    let err = format!(
        "{:#}",
        server_config(&pem, &dir.path().join("other.key"), &ca).unwrap_err()
    );
    assert!(err.contains("not a certificate and its key"), "{err}");
}
