//! A token file rotated between two signatures of one PKCS#11 application
//! (libpkcs11ks.so in this process, through the `cryptoki` crate) is picked
//! up: the module reads `KSC_ID_TOKEN_FILE` again once the token it holds is
//! near expiry. Its own file, as the module has one global state per process.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use ks_devserver::harness::TestIssuer;
use ks_e2e::github_oidc_support::{job_claims, server_trusting, AUDIENCE};
use ks_e2e::pkcs11_support::module_for_new_operation;
use serde_json::json;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[test]
fn rotated_token_file_is_picked_up_between_two_signatures() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let issuer = TestIssuer::new();
    let server = server_trusting(&issuer, tmp.path());
    let token = |lifetime: u64, jti: &str| {
        let mut c = job_claims();
        c["aud"] = json!(AUDIENCE);
        c["exp"] = json!(now() + lifetime);
        c["jti"] = json!(jti);
        issuer.token(&c)
    };
    // The first token has less than the refresh margin (a minute) left: the
    // module uses it, and reads the file again at its next use.
    let first = token(40, "first");
    let second = token(900, "second");
    let path = tmp.path().join("id_token");
    std::fs::write(&path, &first).expect("write the token");

    let log = tmp.path().join("module.log");
    let env = [
        ("KSC_API_SERVER", server.api_url().to_string()),
        ("KSC_CA_FILE", server.ca_file().display().to_string()),
        ("KSC_CACHE", "off".to_string()),
        ("KSC_ID_TOKEN_FILE", path.display().to_string()),
        ("KSC_LOG", format!("info:{}", log.display())),
    ];
    // The operation, created under the same identity (the creator signs).
    let (op, pkcs11) = module_for_new_operation(&env, "key1=2");
    let slot = pkcs11.get_slots_with_token().expect("slots")[0];
    let session = pkcs11.open_ro_session(slot).expect("session");
    let key1 = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"key1".to_vec()),
        ])
        .expect("find key1")[0];
    let public = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(b"key1".to_vec()),
        ])
        .expect("find key1's public key")[0];
    let data = b"two signatures, two tokens";
    let sig1 = session
        .sign(&Mechanism::Sha256RsaPkcs, key1, data)
        .expect("first signature");
    // The CI system rotates the token (atomically, as Kubernetes does).
    let tmp_file = tmp.path().join("id_token.new");
    std::fs::write(&tmp_file, &second).expect("write");
    std::fs::rename(&tmp_file, &path).expect("rotate");
    let sig2 = session
        .sign(&Mechanism::Sha256RsaPkcs, key1, data)
        .expect("second signature");
    for sig in [&sig1, &sig2] {
        session
            .verify(&Mechanism::Sha256RsaPkcs, public, data, sig)
            .expect("verify");
    }
    drop(session);
    pkcs11.finalize().expect("C_Finalize");

    let text = std::fs::read_to_string(&log).expect("module log");
    let reads: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("KSC_ID_TOKEN_FILE") && l.contains("token valid until"))
        .collect();
    let until = |l: &str| {
        l.split("valid until ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .map(str::to_string)
    };
    let distinct: Vec<String> = reads.iter().filter_map(|l| until(l)).collect();
    assert!(
        distinct.len() == 2 && distinct[0] != distinct[1],
        "the rotated token was not read (or read more than once):\n{text}"
    );
    assert!(!text.contains(&first) && !text.contains(&second), "{text}");
    let st = server.operation(&op);
    let used = st["keyusagerestrictions"][0]["usagecount"].as_u64();
    assert_eq!(used, Some(2), "{st}");
}
