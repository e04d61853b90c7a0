//! Trust-store and TLS set-up of the HTTP layer: the system roots (parsed once per process),
//! `KSC_CA_FILE`, and the rustls client configuration that checks `KSC_CA_FILE` first and the
//! system store only when needed.

use std::sync::Arc;

use crate::config::KSC_CA_FILE;
use crate::error::{Error, Result};
use crate::flight::Flight;

/// The system trust store, parsed once per process (it is the largest start-up cost of a
/// signing process: about 150 certificates to read and parse). A single flight, not a
/// `OnceLock`: a child forked while another thread of the parent was loading it would wait
/// forever for that thread's `OnceLock` initialisation; the flight lets the child load its own.
static SYSTEM_ROOTS: Flight<Arc<rustls::RootCertStore>> = Flight::new();

fn system_root_store() -> Arc<rustls::RootCertStore> {
    let load = || {
        let certs = system_root_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(certs);
        log::debug!("{added} system trust anchors ({ignored} unusable)");
        Arc::new(roots)
    };
    // The flight only fails on a poisoned lock: then load without it.
    SYSTEM_ROOTS
        .get(|_| true, |_| true, || Ok(load()))
        .unwrap_or_else(|_| load())
}

/// The system's CA certificates. `SSL_CERT_FILE`/`SSL_CERT_DIR`, when set, are the user's
/// choice and read as given; otherwise the distribution's bundle file alone, and the
/// certificate directories only where there is no bundle.
fn system_root_certs() -> Vec<rustls_pki_types::CertificateDer<'static>> {
    if openssl_probe::has_ssl_cert_env_vars() {
        return rustls_native_certs::load_native_certs().certs;
    }
    let probe = openssl_probe::probe();
    system_root_certs_from(probe.cert_file.as_deref(), &probe.cert_dir)
}

/// Certificates from the bundle `file` if it holds any, else from `dirs`. Debian's
/// `/etc/ssl/certs` holds the bundle's certificates again one per file: reading both parses
/// every certificate twice for nothing.
pub fn system_root_certs_from(
    file: Option<&std::path::Path>,
    dirs: &[std::path::PathBuf],
) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    if let Some(file) = file.filter(|f| f.is_file()) {
        let from_file = rustls_native_certs::load_certs_from_paths(Some(file), None);
        if !from_file.certs.is_empty() {
            return from_file.certs;
        }
    }
    let mut certs = Vec::new();
    for dir in dirs {
        certs.extend(rustls_native_certs::load_certs_from_paths(None, Some(dir)).certs);
    }
    certs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    certs.dedup();
    certs
}

/// Reads `KSC_CA_FILE` (PEM, at least one certificate).
fn ca_file_certs(path: &std::path::Path) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>> {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::config(KSC_CA_FILE, format!("cannot read {}: {e}", path.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::config(KSC_CA_FILE, format!("{} is not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::config(
            KSC_CA_FILE,
            format!("{} contains no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

fn add_ca_certs(
    roots: &mut rustls::RootCertStore,
    path: &std::path::Path,
    certs: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<()> {
    for c in certs {
        roots.add(c.clone()).map_err(|e| {
            Error::config(
                KSC_CA_FILE,
                format!("{}: unusable certificate: {e}", path.display()),
            )
        })?;
    }
    Ok(())
}

/// Which trust anchors the TLS client uses.
#[derive(Debug, Clone)]
pub struct Trust {
    /// `KSC_CA_FILE`.
    pub ca_file: Option<std::path::PathBuf>,
    /// `KSC_SYSTEM_ROOTS`.
    pub system_roots: bool,
    /// Set once the system store had to be consulted (for tests and the debug log).
    pub system_roots_used: Arc<std::sync::atomic::AtomicBool>,
}

/// rustls with the ring provider, TLS 1.2 and 1.3.
///
/// Without `KSC_CA_FILE` the system roots are the trust anchors. With it, the server is first
/// checked against `KSC_CA_FILE` alone; the system store is read only if that fails with an
/// unknown issuer (a server behind an enterprise proxy or with a public certificate), unless
/// `KSC_SYSTEM_ROOTS=false`. The accepted set is the same as "system roots plus `KSC_CA_FILE`";
/// only the cost of reading the system store is skipped when it is not needed.
pub(super) fn tls_config(trust: &Trust) -> Result<rustls::ClientConfig> {
    use std::sync::atomic::Ordering;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?;
    let Some(path) = trust.ca_file.as_deref() else {
        if !trust.system_roots {
            return Err(Error::config(
                "KSC_SYSTEM_ROOTS",
                "false leaves no trust anchors: set KSC_CA_FILE too",
            ));
        }
        trust.system_roots_used.store(true, Ordering::Relaxed);
        let roots = system_root_store();
        if roots.is_empty() {
            return Err(Error::config(
                KSC_CA_FILE,
                "no trust anchors: the system has no CA certificates and KSC_CA_FILE is not set",
            ));
        }
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    };
    let ca_certs = ca_file_certs(path)?;
    let mut ca_roots = rustls::RootCertStore::empty();
    add_ca_certs(&mut ca_roots, path, &ca_certs)?;
    if !trust.system_roots {
        return Ok(builder
            .with_root_certificates(ca_roots)
            .with_no_client_auth());
    }
    let primary = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(ca_roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| Error::internal(format!("TLS setup: {e}")))?;
    let verifier = CaFileThenSystem {
        primary,
        fallback: std::sync::OnceLock::new(),
        path: path.to_path_buf(),
        ca_certs,
        provider,
        used: trust.system_roots_used.clone(),
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Verifies with `KSC_CA_FILE` first and falls back to system roots plus `KSC_CA_FILE`.
struct CaFileThenSystem {
    primary: Arc<rustls::client::WebPkiServerVerifier>,
    fallback:
        std::sync::OnceLock<std::result::Result<Arc<rustls::client::WebPkiServerVerifier>, String>>,
    path: std::path::PathBuf,
    ca_certs: Vec<rustls_pki_types::CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    used: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for CaFileThenSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaFileThenSystem")
            .field("ca_file", &self.path)
            .finish_non_exhaustive()
    }
}

impl CaFileThenSystem {
    fn fallback(
        &self,
    ) -> std::result::Result<Arc<rustls::client::WebPkiServerVerifier>, rustls::Error> {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        self.fallback
            .get_or_init(|| {
                log::debug!(
                    "the server's certificate does not chain to {}; trying the system roots",
                    self.path.display()
                );
                let mut roots = (*system_root_store()).clone();
                add_ca_certs(&mut roots, &self.path, &self.ca_certs).map_err(|e| e.to_string())?;
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    self.provider.clone(),
                )
                .build()
                .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(rustls::Error::General)
    }
}

impl rustls::client::danger::ServerCertVerifier for CaFileThenSystem {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        intermediates: &[rustls_pki_types::CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self.primary.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => self
                .fallback()?
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.primary.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.primary.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.primary.supported_verify_schemes()
    }
}
