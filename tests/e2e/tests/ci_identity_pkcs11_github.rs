//! GitHub Actions' OIDC token in a long-lived PKCS#11 application: a
//! signature that waits for approval inside the module (`KSC_APPROVAL_TIMEOUT`)
//! outlives several short-lived tokens, which the module renews from the
//! stand-in token service while it polls. Its own file, as the module has one
//! global state per process.

use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use ks_devserver::harness::TestIssuer;
use ks_e2e::github_oidc_support::{server_trusting, GithubTokenService, AUDIENCE};
use ks_e2e::pkcs11_support::module_path;
use ks_e2e::tutorial_support::{artefact, clean_command};

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
    let out = clean_command(artefact("ksc"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("KSC_LOG", "off")
        .args(["operation", "create", "--key", "key4=1"])
        .output()
        .expect("ksc operation create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let op = String::from_utf8_lossy(&out.stdout).trim().to_string();

    // The module reads its configuration from the process environment; this
    // binary has this one test, so nothing else reads it meanwhile.
    for (k, v) in &env {
        std::env::set_var(k, v);
    }
    std::env::set_var("KSC_OPERATION_ID", &op);
    let pkcs11 = Pkcs11::new(module_path()).expect("load the module");
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
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
    let limit = Instant::now() + Duration::from_secs(180);
    while gh.hits() < before + 3 {
        assert!(!signer.is_finished(), "the signature ended before approval");
        assert!(Instant::now() < limit, "no token renewal during the wait");
        std::thread::sleep(Duration::from_millis(50));
    }
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
