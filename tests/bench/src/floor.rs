//! The floor: the same sign orders the adapters send, written by a minimal
//! keep-alive HTTPS/1.1 client straight to the server (one connection per
//! thread, no verification of the result, no JSON parsing beyond a check).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Builds a client configuration trusting the dev CA only.
pub fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("cannot read {}: {e}", ca_file.display()))?
    {
        let c = c.map_err(|e| format!("{}: {e}", ca_file.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One kept-alive HTTPS connection.
pub struct Connection {
    stream: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
    host: String,
}

impl Connection {
    /// Connects to `https://host:port` (the `api_url`).
    pub fn open(config: &Arc<rustls::ClientConfig>, api_url: &str) -> Result<Connection, String> {
        let host = api_url
            .strip_prefix("https://")
            .ok_or_else(|| format!("{api_url} is not an https URL"))?
            .trim_end_matches('/')
            .to_string();
        let name = host
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&host)
            .to_string();
        let server_name =
            ServerName::try_from(name.clone()).map_err(|e| format!("server name {name}: {e}"))?;
        let tcp = TcpStream::connect(&host).map_err(|e| format!("connect {host}: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let conn = rustls::ClientConnection::new(config.clone(), server_name)
            .map_err(|e| format!("TLS: {e}"))?;
        Ok(Connection {
            stream: BufReader::new(rustls::StreamOwned::new(conn, tcp)),
            host,
        })
    }

    /// `POST path` with a JSON body; returns (status, body).
    pub fn post_json(
        &mut self,
        path: &str,
        token: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let w = self.stream.get_mut();
        w.write_all(head.as_bytes())
            .and_then(|_| w.write_all(body))
            .and_then(|_| w.flush())
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        self.stream
            .read_line(&mut line)
            .map_err(|e| format!("read status: {e}"))?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut len: Option<usize> = None;
        loop {
            line.clear();
            self.stream
                .read_line(&mut line)
                .map_err(|e| format!("read header: {e}"))?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().ok();
                }
            }
        }
        let len = len.ok_or("response without Content-Length")?;
        let mut buf = vec![0u8; len];
        self.stream
            .read_exact(&mut buf)
            .map_err(|e| format!("read body: {e}"))?;
        Ok((status, buf))
    }
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh UUID-shaped request id (unique per process and call).
fn request_id() -> String {
    let n = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let pid = u64::from(std::process::id());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (t >> 32) as u32,
        (t >> 16) as u16,
        (t & 0xfff) as u16,
        (pid & 0xfff) as u16,
        n & 0xffff_ffff_ffff
    )
}

/// The sign order body the adapters send for one SHA-256 signature: RSA
/// PKCS#1 v1.5 over the DigestInfo, or ECDSA over the hash with r‖s output.
pub fn sign_order_body(operation: &str, keyid: &str, rsa: bool, digest: &[u8]) -> Vec<u8> {
    let (input, padding, format) = if rsa {
        (crate::digest_info_sha256(digest), "digestinfo", "asn1")
    } else {
        (digest.to_vec(), "none", "p1363")
    };
    serde_json::json!({
        "operationid": operation,
        "keyid": keyid,
        "inputdata": hex::encode(input),
        "inputformat": "hex",
        "inputpadding": padding,
        "signatureformat": format,
        "description": "ks-bench floor signature",
        "requestid": request_id(),
    })
    .to_string()
    .into_bytes()
}

/// Sends `count` sign orders on one connection; each must be answered 201 with a result.
pub fn sign_loop(
    conn: &mut Connection,
    token: &str,
    operation: &str,
    keyid: &str,
    rsa: bool,
    digest: &[u8],
    count: usize,
) -> Result<(), String> {
    for _ in 0..count {
        let body = sign_order_body(operation, keyid, rsa, digest);
        let (status, reply) = conn.post_json("/api/signorders", token, &body)?;
        if status != 201 || !reply.windows(8).any(|w| w == b"\"result\"") {
            return Err(format!(
                "sign order answered {status}: {}",
                String::from_utf8_lossy(&reply)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_fresh_and_uuid_shaped() {
        let a = request_id();
        let b = request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36, "{a}");
        assert_eq!(a.matches('-').count(), 4, "{a}");
    }

    #[test]
    fn bodies_match_the_adapters_wire_fields() {
        let d = [7u8; 32];
        let rsa: serde_json::Value =
            serde_json::from_slice(&sign_order_body("op", "key1", true, &d)).expect("json");
        assert_eq!(rsa["inputpadding"], "digestinfo");
        assert_eq!(rsa["signatureformat"], "asn1");
        assert_eq!(rsa["inputdata"].as_str().map(str::len), Some(2 * (19 + 32)));
        let ec: serde_json::Value =
            serde_json::from_slice(&sign_order_body("op", "key2", false, &d)).expect("json");
        assert_eq!(ec["inputpadding"], "none");
        assert_eq!(ec["signatureformat"], "p1363");
        assert_eq!(ec["inputdata"], hex::encode(d));
    }
}
