//! The TLS CA (`ca.pem`, what clients pass as `KSC_CA_FILE`) and the rustls
//! server configuration for both listeners.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::keys::write_atomic;

fn ca_params() -> CertificateParams {
    // The parameters are rebuilt identically on every start: together with
    // the persisted CA key they are all rcgen needs to issue server
    // certificates that chain to the persisted ca.pem.
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "ks-devserver TLS CA");
    dn.push(DnType::OrganizationName, "ks-devserver (development only)");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// Loads or creates the TLS CA in `dir` and issues a fresh server certificate
/// for loopback names plus `extra_names`; returns the rustls configuration.
pub fn server_config(
    dir: &Path,
    extra_names: &[String],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let ca_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca.key.pem");
    let ca_key = if ca_path.exists() && ca_key_path.exists() {
        let pem = std::fs::read_to_string(&ca_key_path)
            .map_err(|e| format!("cannot read {}: {e}", ca_key_path.display()))?;
        KeyPair::from_pem(&pem).map_err(|e| format!("{}: {e}", ca_key_path.display()))?
    } else {
        let key = KeyPair::generate().map_err(|e| format!("TLS CA key: {e}"))?;
        let cert = ca_params()
            .self_signed(&key)
            .map_err(|e| format!("TLS CA certificate: {e}"))?;
        write_atomic(&ca_key_path, key.serialize_pem().as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", ca_key_path.display()))?;
        write_atomic(&ca_path, cert.pem().as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", ca_path.display()))?;
        key
    };
    let issuer = Issuer::new(ca_params(), ca_key);

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(extra_names.iter().cloned());
    let mut params =
        CertificateParams::new(names).map_err(|e| format!("server certificate names: {e}"))?;
    params
        .distinguished_name
        .push(DnType::CommonName, "ks-devserver");
    let server_key = KeyPair::generate().map_err(|e| format!("server key: {e}"))?;
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .map_err(|e| format!("server certificate: {e}"))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .map_err(|e| format!("TLS server configuration: {e}"))?;
    // HTTP/1.1 only: the server speaks nothing else.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
