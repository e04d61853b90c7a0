//! Tokens from a configured external issuer (like a GitLab CI `id_token`):
//! accepted with the mapped rights, refused when the signature, issuer,
//! audience or expiry is wrong.

mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ks_devserver::harness::DevServer;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;
use support::*;

const ISS: &str = "https://gitlab.example.test";
const AUD: &str = "https://keyserver.example.test";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt(key: &RsaPrivateKey, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig.to_bytes()))
}

fn claims(project: &str, git_ref: &str) -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": format!("project_path:{project}:ref_type:branch:ref:{git_ref}"),
        "project_path": project, "ref": git_ref, "ref_protected": "true",
        "iat": now(), "nbf": now(), "exp": now() + 300,
    })
}

#[test]
fn external_issuer_tokens() {
    let mut rng = rand::rngs::OsRng;
    let key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let other = RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let pubkey = key.to_public_key();
    std::fs::write(
        &jwks,
        json!({"keys": [{"kty": "RSA", "kid": "ci-1", "alg": "RS256", "use": "sig",
            "n": B64.encode(pubkey.n().to_bytes_be()), "e": B64.encode(pubkey.e().to_bytes_be())}]})
        .to_string(),
    )
    .unwrap();
    let config = format!(
        r#"
[[issuers]]
issuer = "{ISS}"
audience = "{AUD}"
jwks_file = "{}"

[[issuers.map]]
claims = {{ project_path = "group/firmware", ref = "main" }}
user = "orderer-clientkey1"

[[issuers.map]]
claims = {{ project_path = "group/security" }}
user = "approver-key2"
"#,
        jwks.display()
    );
    let s = DevServer::builder().config_toml(config).start();

    // Accepted, with the rights of orderer-clientkey1 exactly.
    let ci = jwt(&key, "ci-1", &claims("group/firmware", "main"));
    let create = |token: &str, keyid: &str| {
        s.api_request(
            "POST",
            "/api/operations",
            Some(token),
            Some(&json!({
            "validms": 60000, "description": "CI pipeline 1234",
            "new-keyusagerestrictions": [{"keyid": keyid, "maxusagecount": 1}]})),
        )
    };
    let r = create(&ci, "key1");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let op = r.json()["id"].as_str().unwrap().to_string();
    assert!(r.json()["createdby"].as_str().unwrap().starts_with(ISS));
    assert_error(&create(&ci, "key2"), 403, "forbidden");
    let b = sign_body(
        &op,
        "key1",
        &digest_info("sha256", &hash("sha256", b"fw")),
        "digestinfo",
        "asn1",
    );
    assert_eq!(
        s.api_request("POST", "/api/signorders", Some(&ci), Some(&b))
            .status,
        201
    );

    // A mapped approver from the same issuer approves (four-eyes by identity).
    let op2 = s.create_operation("orderer-client", &[("key2", 1)], 60_000);
    let sec = jwt(&key, "ci-1", &claims("group/security", "main"));
    let r = s.api_request(
        "POST",
        &format!("/api/operations/{op2}/approve"),
        Some(&sec),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "approved");

    // A valid token whose claims match no mapping has no rights.
    let unmapped = jwt(&key, "ci-1", &claims("group/firmware", "feature-x"));
    assert_error(
        &s.api_request("GET", "/api/keys", Some(&unmapped), None),
        403,
        "forbidden",
    );

    // Refused: wrong signature, issuer, audience, expiry.
    let wrong_sig = jwt(&other, "ci-1", &claims("group/firmware", "main"));
    assert_error(
        &s.api_request("GET", "/api/keys", Some(&wrong_sig), None),
        401,
        "unauthorized",
    );
    let mut c = claims("group/firmware", "main");
    c["iss"] = json!("https://evil.example.test");
    assert_error(
        &s.api_request("GET", "/api/keys", Some(&jwt(&key, "ci-1", &c)), None),
        401,
        "unauthorized",
    );
    let mut c = claims("group/firmware", "main");
    c["aud"] = json!("https://other-service.example.test");
    assert_error(
        &s.api_request("GET", "/api/keys", Some(&jwt(&key, "ci-1", &c)), None),
        401,
        "unauthorized",
    );
    let mut c = claims("group/firmware", "main");
    c["exp"] = json!(now() - 10);
    let r = s.api_request("GET", "/api/keys", Some(&jwt(&key, "ci-1", &c)), None);
    assert_error(&r, 401, "unauthorized");
    assert!(r.json()["message"].as_str().unwrap().contains("expired"));
    let mut c = claims("group/firmware", "main");
    c.as_object_mut().unwrap().remove("exp");
    assert_error(
        &s.api_request("GET", "/api/keys", Some(&jwt(&key, "ci-1", &c)), None),
        401,
        "unauthorized",
    );
    // An audience array containing ours is fine.
    let mut c = claims("group/firmware", "main");
    c["aud"] = json!(["something-else", AUD]);
    assert_eq!(
        s.api_request("GET", "/api/keys", Some(&jwt(&key, "ci-1", &c)), None)
            .status,
        200
    );
    // alg=none is never accepted.
    let header = B64.encode(json!({"alg": "none"}).to_string());
    let none = format!(
        "{header}.{}.",
        B64.encode(claims("group/firmware", "main").to_string())
    );
    assert_error(
        &s.api_request("GET", "/api/keys", Some(&none), None),
        401,
        "unauthorized",
    );
    // Our own issuer's tokens are not accepted with a foreign key either.
    let mut c = claims("group/firmware", "main");
    c["iss"] = json!("ks-devserver");
    c["aud"] = json!("keyserver");
    c["sub"] = json!("adminclient");
    assert_error(
        &s.api_request("GET", "/api/keys", Some(&jwt(&key, "ci-1", &c)), None),
        401,
        "unauthorized",
    );
}

#[test]
fn the_creators_ci_context_is_recorded_at_creation() {
    use ks_devserver::harness::TestIssuer;
    let dir = tempfile::tempdir().unwrap();
    let (gitlab, github) = (TestIssuer::new(), TestIssuer::new());
    gitlab.write_jwks(&dir.path().join("gitlab.json"));
    github.write_jwks(&dir.path().join("github.json"));
    let gh_iss = "https://token.actions.githubusercontent.com";
    let config = format!(
        r#"
[[issuers]]
issuer = "{ISS}"
audience = "{AUD}"
jwks_file = "{gl}"
[[issuers.map]]
claims = {{ project_path = "group/firmware" }}
user = "orderer-clientkey1"

[[issuers]]
issuer = "{gh_iss}"
audience = "{AUD}"
jwks_file = "{gh}"
[[issuers.map]]
claims = {{ repository = "acme/firmware" }}
user = "orderer-clientkey1"
"#,
        gl = dir.path().join("gitlab.json").display(),
        gh = dir.path().join("github.json").display(),
    );
    let s = DevServer::builder().config_toml(config).start();
    let create = |token: &str| {
        let r = s.api_request(
            "POST",
            "/api/operations",
            Some(token),
            Some(
                &json!({"validms": 60000, "description": "firmware release build",
                "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 1}]}),
            ),
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    };

    // GitLab id_token: project, ref, pipeline and the user who started it.
    let mut c = claims("group/firmware", "main");
    c["pipeline_id"] = json!("98765");
    c["user_login"] = json!("alice");
    c["namespace_path"] = json!("group");
    let doc = create(&gitlab.token(&c));
    let want = json!({"system": "gitlab", "project_path": "group/firmware", "ref": "main",
        "pipeline_id": "98765", "user_login": "alice"});
    assert_eq!(doc["createdcontext"], want);
    // Stored: the status document says the same later.
    let op = doc["id"].as_str().unwrap();
    assert_eq!(s.operation(op)["createdcontext"], want);

    // GitHub Actions OIDC token: repository, ref, run id and actor (run_id
    // as a number is taken as text).
    let gh = json!({"iss": gh_iss, "aud": AUD, "sub": "repo:acme/firmware:ref:refs/heads/main",
        "repository": "acme/firmware", "ref": "refs/heads/main", "run_id": 4242,
        "actor": "octocat", "exp": now() + 300});
    let doc = create(&github.token(&gh));
    assert_eq!(
        doc["createdcontext"],
        json!({"system": "github", "repository": "acme/firmware", "ref": "refs/heads/main",
            "run_id": "4242", "actor": "octocat"})
    );

    // Client credentials carry no CI context: the field is absent.
    let op = s.create_operation("orderer-clientkey1", &[("key1", 1)], 60_000);
    assert!(s.operation(&op).get("createdcontext").is_none());
}
