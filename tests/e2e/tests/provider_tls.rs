//! A TLS 1.3 handshake where `openssl s_server` signs with a `ks:` key
//! (RSA-PSS and ECDSA), checked by `openssl s_client -verify_return_error`
//! against the dev signing CA.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ks_e2e::provider_support::{openssl, ProviderEnv};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn handshake(keyid: &str, sigalg: &str, expected_sig: &str) {
    let env = ProviderEnv::start(3);
    let cert = env.certificate(keyid);
    let uri = format!("ks:{keyid}");
    let mut cmd = env.command(openssl());
    cmd.args([
        "s_server",
        "-provider",
        "keyserver",
        "-provider",
        "default",
        "-key",
        &uri,
        "-cert",
        &cert.to_string_lossy(),
        "-accept",
        "127.0.0.1:0",
        "-naccept",
        "1",
        "-tls1_3",
    ])
    // s_server stops at EOF on stdin: keep it open.
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start openssl s_server");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait (bounded) for "ACCEPT 127.0.0.1:PORT".
    let port = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                if let Some(addr) = line.strip_prefix("ACCEPT ") {
                    break addr
                        .rsplit(':')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                }
            }
            Err(e) => {
                let mut err = String::new();
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
                panic!("s_server with {uri} did not start listening ({e}): {err}");
            }
        }
    };
    let ca = env.server.signing_ca_file().to_string_lossy().into_owned();
    let out = Command::new(openssl())
        .env_remove("OPENSSL_CONF")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-CAfile",
            &ca,
            "-verify_return_error",
            "-tls1_3",
            // Only this signature scheme is offered: a handshake proves the
            // server signed with it.
            "-sigalgs",
            sigalg,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "s_client failed: {text}\n{err}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}\n{err}");
    assert!(text.contains("TLSv1.3"), "{text}");
    // s_client names the scheme too (3.0: "RSA-PSS"/"ECDSA", 4.0: the
    // TLS name, and only when -sigalgs is given).
    if let Some(line) = text.lines().find(|l| l.starts_with("Peer signature type:")) {
        assert!(
            line.contains(expected_sig) || line.contains(sigalg),
            "{line}"
        );
    }
    drop(server);
}

#[test]
fn tls13_server_with_an_rsa_key_signs_rsa_pss() {
    handshake("key1", "rsa_pss_rsae_sha256", "RSA-PSS");
}

#[test]
fn tls13_server_with_an_ec_key_signs_ecdsa() {
    handshake("key4", "ecdsa_secp384r1_sha384", "ECDSA");
}
