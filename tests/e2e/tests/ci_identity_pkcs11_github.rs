//! GitHub Actions' OIDC token in a long-lived PKCS#11 application: a
//! signature that waits for approval inside the module (`KSC_APPROVAL_TIMEOUT`)
//! outlives several short-lived tokens, which the module renews from the
//! stand-in token service while it polls. Its own file, as the module has one
//! global state per process.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use ks_devserver::harness::TestIssuer;
use ks_e2e::github_oidc_support::{server_trusting, GithubTokenService, AUDIENCE};
use ks_e2e::pkcs11_support::module_for_new_operation;

const REQUEST_TOKEN: &str = "ghs_module-request-token-5b9e0d";

#[test]
fn module_renews_github_tokens_while_a_signature_waits_for_approval() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let issuer = TestIssuer::new();
    let server = server_trusting(&issuer, tmp.path());
    let gh = GithubTokenService::start(issuer, REQUEST_TOKEN, 4);
    let log = tmp.path().join("module.log");
    let env = [
        ("KSC_API_SERVER", server.api_url().to_string()),
        ("KSC_CA_FILE", server.ca_file().display().to_string()),
        ("KSC_CACHE", "off".to_string()),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", gh.request_url()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_string()),
        ("KSC_OIDC_AUDIENCE", AUDIENCE.to_string()),
        ("KSC_ID_TOKEN_SOURCE", "github".to_string()),
        ("KSC_APPROVAL_TIMEOUT", "5m".to_string()),
        ("KSC_LOG", format!("debug:{}", log.display())),
    ];
    let (op, pkcs11) = module_for_new_operation(&env, "key4=1");
    let slot = pkcs11.get_slots_with_token().expect("slots")[0];
    let data = b"signed after a long approval wait";
    let signer = {
        let pkcs11 = pkcs11.clone();
        std::thread::spawn(move || {
            let session = pkcs11.open_ro_session(slot).expect("session");
            let key = session
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(b"key4".to_vec()),
                ])
                .expect("find key4")[0];
            let public = session
                .find_objects(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::Label(b"key4".to_vec()),
                ])
                .expect("find key4's public key")[0];
            let sig = session.sign(&Mechanism::EcdsaSha256, key, data);
            (session, public, sig)
        })
    };
    // Approve only once the waiting module has renewed its token three times.
    let before = gh.hits();
    let renewed = gh.wait_for_hits(before + 3);
    assert!(
        renewed.is_ok() && !signer.is_finished(),
        "{} of 3 token renewals during the wait (the signature {}):\n{}",
        renewed.err().unwrap_or(before + 3) - before,
        if signer.is_finished() {
            "ended before approval"
        } else {
            "still waits"
        },
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    server.approve("approver-key4", &op);
    let (session, public, sig) = signer.join().expect("the signing thread");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let sig = sig.unwrap_or_else(|e| panic!("C_Sign after approval: {e}\n{text}"));
    session
        .verify(&Mechanism::EcdsaSha256, public, data, &sig)
        .expect("verify");
    drop(session);
    pkcs11.finalize().expect("C_Finalize");
    assert_eq!(gh.refused(), 0);
    // Renewed before expiry, not after KeyServer refused an expired token.
    assert!(
        text.contains("fetching GitHub Actions' OIDC token"),
        "{text}"
    );
    assert!(!text.contains("token refused (HTTP 401)"), "{text}");
    let st = server.operation(&op);
    assert_eq!(st["keyusagerestrictions"][0]["usagecount"], 1, "{st}");
    assert!(!text.contains(REQUEST_TOKEN), "{text}");
    for t in gh.issued() {
        assert!(!text.contains(&t), "an issued token is in the module log");
    }
}
