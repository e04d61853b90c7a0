//! Helpers shared by the dev server's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ks_devserver::client::HttpResponse;
use ks_devserver::harness::DevServer;
use serde_json::{json, Value};
use sha2::Digest;

/// Fails the test naming the apt package when a tool is missing.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{tool}` is not installed; install it with `apt-get install {package}`")
    })
}

/// Hash of `data` with `alg` ("sha256"/"sha384"/"sha512").
pub fn hash(alg: &str, data: &[u8]) -> Vec<u8> {
    match alg {
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        other => panic!("unknown hash {other}"),
    }
}

/// DER DigestInfo for `alg` over `digest`.
pub fn digest_info(alg: &str, digest: &[u8]) -> Vec<u8> {
    let prefix: &[u8] = match alg {
        "sha256" => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        "sha384" => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        "sha512" => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        other => panic!("unknown hash {other}"),
    };
    let mut v = prefix.to_vec();
    v.extend_from_slice(digest);
    v
}

/// A sign-order body.
pub fn sign_body(op: &str, key: &str, input: &[u8], padding: &str, format: &str) -> Value {
    json!({
        "operationid": op, "keyid": key, "inputdata": hex::encode(input),
        "inputformat": "hex", "inputpadding": padding, "signatureformat": format,
        "description": "integration test signature",
    })
}

/// POSTs a sign order with a fresh token of `user`.
pub fn sign(s: &DevServer, user: &str, body: &Value) -> HttpResponse {
    let token = s.token(user);
    s.api_request("POST", "/api/signorders", Some(&token), Some(body))
}

/// Asserts status and §7 error code.
pub fn assert_error(r: &HttpResponse, status: u16, code: &str) {
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (status, Some(code)),
        "body: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        r.json()["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a message is present"
    );
}

/// The PEM certificate of `keyid` from `GET /api/keys`.
pub fn key_cert(s: &DevServer, keyid: &str) -> String {
    let token = s.token("adminclient");
    let r = s.api_request("GET", "/api/keys", Some(&token), None);
    assert_eq!(r.status, 200);
    r.json()
        .as_array()
        .expect("key list")
        .iter()
        .find(|k| k["keyid"] == keyid)
        .and_then(|k| k["certificate"].as_str())
        .unwrap_or_else(|| panic!("no certificate for {keyid}"))
        .to_string()
}

/// Runs a command, panicking with its output on failure; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes the public key of a PEM certificate to `dir/name.pub.pem`.
pub fn public_key_file(dir: &Path, name: &str, cert_pem: &str) -> PathBuf {
    let cert = dir.join(format!("{name}.cert.pem"));
    std::fs::write(&cert, cert_pem).expect("write cert");
    let public = dir.join(format!("{name}.pub.pem"));
    run(Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(&cert)
        .arg("-out")
        .arg(&public));
    public
}

/// DER ECDSA-Sig-Value from r‖s (for verifying p1363 output with openssl).
pub fn p1363_to_der(raw: &[u8]) -> Vec<u8> {
    fn int(bytes: &[u8]) -> Vec<u8> {
        let mut b: Vec<u8> = bytes.iter().copied().skip_while(|&x| x == 0).collect();
        if b.is_empty() || b[0] & 0x80 != 0 {
            b.insert(0, 0);
        }
        let mut out = vec![0x02];
        out.extend(der_len(b.len()));
        out.extend(b);
        out
    }
    fn der_len(n: usize) -> Vec<u8> {
        if n < 0x80 {
            vec![n as u8]
        } else if n < 0x100 {
            vec![0x81, n as u8]
        } else {
            vec![0x82, (n >> 8) as u8, n as u8]
        }
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = int(r);
    body.extend(int(s));
    let mut out = vec![0x30];
    out.extend(der_len(body.len()));
    out.extend(body);
    out
}
