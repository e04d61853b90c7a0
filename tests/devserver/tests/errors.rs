//! Each §7 error code from a real request, and a batch of malformed requests
//! that must all get a 4xx with the JSON error body (never a 500).

mod support;

use ks_devserver::harness::DevServer;
use serde_json::json;
use support::*;

#[test]
fn each_error_code_from_a_real_request() {
    let s = DevServer::start();
    let t = s.token("orderer-client");
    let d = hash("sha256", b"data");

    // 400 invalid_request: description too short.
    let op = s.create_operation("orderer-client", &[("key1", 1), ("key2", 1)], 60_000);
    let mut b = sign_body(
        &op,
        "key1",
        &digest_info("sha256", &d),
        "digestinfo",
        "asn1",
    );
    b["description"] = json!("short");
    assert_error(
        &s.api_request("POST", "/api/signorders", Some(&t), Some(&b)),
        400,
        "invalid_request",
    );

    // 401 unauthorized: missing, malformed, wrongly signed token.
    assert_error(
        &s.api_request("GET", "/api/keys", None, None),
        401,
        "unauthorized",
    );
    assert_error(
        &s.api_request("GET", "/api/keys", Some("not-a-jwt"), None),
        401,
        "unauthorized",
    );
    let mut forged = t.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_error(
        &s.api_request("GET", "/api/keys", Some(&forged), None),
        401,
        "unauthorized",
    );
    // A token whose claims were edited no longer verifies.
    let parts: Vec<&str> = t.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("adminclient");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    );
    assert_error(
        &s.api_request("GET", "/api/keys", Some(&tampered), None),
        401,
        "unauthorized",
    );

    // 403 forbidden / key_not_in_operation.
    let approver = s.token("approver-key1");
    let r = s.api_request("POST", "/api/operations", Some(&approver), Some(&json!({
        "validms": 60000, "description": "not allowed", "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 1}]})));
    assert_error(&r, 403, "forbidden");
    let b = sign_body(&op, "key5", &d, "none", "p1363");
    assert_error(
        &s.api_request("POST", "/api/signorders", Some(&t), Some(&b)),
        403,
        "key_not_in_operation",
    );

    // 404 not_found: operation, key, endpoint.
    assert_error(
        &s.api_request("GET", "/api/operations/999999", Some(&t), None),
        404,
        "not_found",
    );
    let b = sign_body(
        "999999",
        "key1",
        &digest_info("sha256", &d),
        "digestinfo",
        "asn1",
    );
    assert_error(
        &s.api_request("POST", "/api/signorders", Some(&t), Some(&b)),
        404,
        "not_found",
    );
    let b = sign_body(&op, "key99", &d, "none", "p1363");
    assert_error(
        &s.api_request("POST", "/api/signorders", Some(&t), Some(&b)),
        404,
        "not_found",
    );
    let r = s.api_request("POST", "/api/operations", Some(&t), Some(&json!({
        "validms": 60000, "description": "unknown key", "new-keyusagerestrictions": [{"keyid": "key99", "maxusagecount": 1}]})));
    assert_error(&r, 404, "not_found");
    assert_error(
        &s.api_request("GET", "/api/nothing", Some(&t), None),
        404,
        "not_found",
    );

    // 409 operation_pending, usage_exhausted, operation_rejected, operation_expired.
    let b = sign_body(&op, "key2", &d, "none", "p1363");
    assert_error(
        &s.api_request("POST", "/api/signorders", Some(&t), Some(&b)),
        409,
        "operation_pending",
    );
    s.approve("approver-key2", &op);
    assert_eq!(
        s.api_request("POST", "/api/signorders", Some(&t), Some(&b))
            .status,
        201
    );
    assert_error(
        &s.api_request("POST", "/api/signorders", Some(&t), Some(&b)),
        409,
        "usage_exhausted",
    );
    s.reject("approver-key1", &op);
    let b = sign_body(
        &op,
        "key1",
        &digest_info("sha256", &d),
        "digestinfo",
        "asn1",
    );
    assert_error(
        &s.api_request("POST", "/api/signorders", Some(&t), Some(&b)),
        409,
        "operation_rejected",
    );
    let op2 = s.create_operation("orderer-client", &[("key1", 1)], 1);
    // validms of 1 ms: expired by the time the next request arrives; poll to be sure.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.operation(&op2)["status"] != "expired" {
        assert!(std::time::Instant::now() < deadline);
    }
    let b = sign_body(
        &op2,
        "key1",
        &digest_info("sha256", &d),
        "digestinfo",
        "asn1",
    );
    assert_error(
        &s.api_request("POST", "/api/signorders", Some(&t), Some(&b)),
        409,
        "operation_expired",
    );

    // OAuth errors on the auth server.
    let r = s.token_request("orderer-client", "wrong-secret");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let r = s.token_request("nobody", "nobody-secret");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[test]
fn rate_limited_with_retry_after() {
    let s = DevServer::builder().fault_429(1.0).start();
    let r = s
        .http()
        .request("GET", &format!("{}/api/keys", s.api_url()), &[], b"")
        .unwrap();
    assert_error(&r, 429, "rate_limited");
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(secs >= 1);
    // Exempt (harness) requests and the stats endpoint still work.
    assert_eq!(s.stats()["faults"], 1);
}

#[test]
fn malformed_requests_all_get_4xx() {
    let s = DevServer::start();
    let t = s.token("adminclient");
    let op = s.create_operation("orderer-client", &[("key1", 5), ("key2", 5)], 60_000);
    let auth = format!("Bearer {t}");
    let huge = "a".repeat(200_000);
    let long_hex = "ab".repeat(5_000);
    let good = sign_body(&op, "key2", &hash("sha256", b"x"), "none", "p1363");
    let with = |field: &str, value: serde_json::Value| {
        let mut b = good.clone();
        b[field] = value;
        b.to_string()
    };
    let without = |field: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(field);
        b.to_string()
    };
    let sign_bodies: Vec<String> = vec![
        "".into(),
        "{".into(),
        "null".into(),
        "[]".into(),
        "\"string\"".into(),
        "{\"operationid\": }".into(),
        "{}".into(),
        with("operationid", json!(42)),
        with("operationid", json!(null)),
        with("keyid", json!(["key2"])),
        with("inputdata", json!(1234)),
        with("inputdata", json!("zz".repeat(32))),
        with("inputdata", json!("abc")),
        with("inputdata", json!("")),
        with("inputdata", json!(long_hex)),
        with("inputformat", json!("base64")),
        with("inputpadding", json!("pkcs1")),
        with("signatureformat", json!("raw")),
        with("description", json!(huge.clone())),
        with("description", json!(12345678)),
        with("description", json!("")),
        with("requestid", json!(7)),
        with("requestid", json!("r".repeat(500))),
        with("saltlength", json!(-1)),
        with("saltlength", json!("32")),
        without("inputdata"),
        without("keyid"),
        without("description"),
        format!("{{\"operationid\": \"{huge}\"}}"),
        "\u{0}\u{1}\u{2}binary".into(),
        "{\"a\": 1e999999}".into(),
        "[".repeat(100_000),
    ];
    let create_bodies: Vec<String> = vec![
        "{".into(),
        json!({"validms": "60000", "description": "x op", "new-keyusagerestrictions": []}).to_string(),
        json!({"validms": 60000, "description": "empty list", "new-keyusagerestrictions": []}).to_string(),
        json!({"validms": -1, "description": "neg", "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 1}]}).to_string(),
        json!({"validms": 0, "description": "zero", "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 1}]}).to_string(),
        json!({"validms": 60000.5, "description": "float", "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 1}]}).to_string(),
        json!({"validms": 60000, "description": "zero uses", "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 0}]}).to_string(),
        json!({"validms": 60000, "description": "dup", "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 1}, {"keyid": "key1", "maxusagecount": 1}]}).to_string(),
        json!({"validms": 60000, "description": "", "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 1}]}).to_string(),
        json!({"validms": 60000, "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 1}]}).to_string(),
        json!({"validms": 60000, "description": "obj", "new-keyusagerestrictions": {"keyid": "key1"}}).to_string(),
        json!({"validms": 60000, "description": huge, "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 1}]}).to_string(),
    ];
    let mut checked = 0;
    for (path, bodies) in [
        ("/api/signorders", &sign_bodies),
        ("/api/operations", &create_bodies),
    ] {
        for body in bodies {
            let url = format!("{}{path}", s.api_url());
            let r = s
                .http()
                .request(
                    "POST",
                    &url,
                    &[
                        ("Authorization", &auth),
                        ("Content-Type", "application/json"),
                    ],
                    body.as_bytes(),
                )
                .unwrap_or_else(|e| panic!("{path} with {:.60}: {e}", body));
            assert!(
                (400..500).contains(&r.status),
                "{path} with {:.80} gave {}: {}",
                body,
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(r.json()["error"], "invalid_request", "{path} {:.80}", body);
            checked += 1;
        }
    }
    // Wrong content type, wrong methods, bad headers, bad token requests.
    let url = format!("{}/api/signorders", s.api_url());
    let r = s
        .http()
        .request(
            "POST",
            &url,
            &[("Authorization", &auth), ("Content-Type", "text/plain")],
            good.to_string().as_bytes(),
        )
        .unwrap();
    assert_error(&r, 400, "invalid_request");
    let r = s
        .http()
        .request(
            "DELETE",
            &format!("{}/api/keys", s.api_url()),
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 405);
    let r = s
        .http()
        .request(
            "GET",
            &format!("{}/api/keys", s.api_url()),
            &[("Authorization", "Basic Zm9vOmJhcg==")],
            b"",
        )
        .unwrap();
    assert_error(&r, 401, "unauthorized");
    let r = s
        .http()
        .request(
            "GET",
            &format!("{}/api/keys", s.api_url()),
            &[("Authorization", "Bearer a.b.c")],
            b"",
        )
        .unwrap();
    assert_error(&r, 401, "unauthorized");
    let token_url = format!("{}/oauth2/token", s.auth_url());
    for (headers, body) in [
        (
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            "grant_type=client_credentials",
        ),
        (
            vec![
                ("Authorization", "Basic !!!"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            "grant_type=client_credentials",
        ),
        (
            vec![
                ("Authorization", "Basic YWRtaW5jbGllbnQ="),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            "grant_type=client_credentials",
        ),
        (
            vec![
                (
                    "Authorization",
                    "Basic YWRtaW5jbGllbnQ6YWRtaW5jbGllbnQtc2VjcmV0",
                ),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            "grant_type=password",
        ),
        (
            vec![
                (
                    "Authorization",
                    "Basic YWRtaW5jbGllbnQ6YWRtaW5jbGllbnQtc2VjcmV0",
                ),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            "",
        ),
        (
            vec![
                (
                    "Authorization",
                    "Basic YWRtaW5jbGllbnQ6YWRtaW5jbGllbnQtc2VjcmV0",
                ),
                ("Content-Type", "application/json"),
            ],
            "{}",
        ),
        (
            vec![
                (
                    "Authorization",
                    "Basic YWRtaW5jbGllbnQ6YWRtaW5jbGllbnQtc2VjcmV0",
                ),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            "grant_type=%ZZ%",
        ),
    ] {
        let r = s
            .http()
            .request("POST", &token_url, &headers, body.as_bytes())
            .unwrap();
        assert!(
            (400..500).contains(&r.status),
            "token {headers:?} {body}: {}",
            r.status
        );
        assert!(r.json()["error"].is_string());
        checked += 1;
    }
    assert!(checked > 40);
    // Unknown fields are ignored, not an error.
    let mut extra = good.clone();
    extra["unknownfield"] = json!({"nested": [1, 2]});
    s.approve("approver-key2", &op);
    let r = s
        .http()
        .request(
            "POST",
            &url,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            extra.to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // The server is alive and nothing leaked into usage counts.
    let st = s.operation(&op);
    assert_eq!(st["keyusagerestrictions"][1]["usagecount"], 1);
    assert_eq!(st["keyusagerestrictions"][0]["usagecount"], 0);
}

#[test]
fn control_and_bidi_characters_in_descriptions_are_refused() {
    let s = DevServer::start();
    let t = s.token("orderer-client");
    let create = |description: &str| {
        s.api_request(
            "POST",
            "/api/operations",
            Some(&t),
            Some(&json!({"validms": 60000, "description": description,
                "new-keyusagerestrictions": [{"keyid": "key1", "maxusagecount": 1}]})),
        )
    };
    let cases = [
        (
            "firmware \u{202E}nib.exe release",
            "U+202E",
            "RIGHT-TO-LEFT OVERRIDE",
        ),
        ("firmware\0release build", "U+0000", "NUL"),
        (
            "firmware release\nApproved by security",
            "U+000A",
            "LINE FEED",
        ),
        ("firmware \u{1b}[2Krelease", "U+001B", "ESCAPE"),
        (
            "firmware \u{2066}release\u{2069}",
            "U+2066",
            "LEFT-TO-RIGHT ISOLATE",
        ),
        ("firmware \u{200F}release", "U+200F", "RIGHT-TO-LEFT MARK"),
        ("firmware \u{85}release", "U+0085", "control"),
    ];
    let before = s
        .api_request("GET", "/api/operations", Some(&t), None)
        .json()
        .as_array()
        .map(Vec::len);
    for (description, code, name) in cases {
        let r = create(description);
        assert_error(&r, 400, "invalid_request");
        let msg = r.json()["message"].as_str().unwrap().to_string();
        assert!(
            msg.contains("description") && msg.contains(code) && msg.contains(name),
            "{description:?}: {msg}"
        );
    }
    // Nothing was created by any of them.
    let after = s
        .api_request("GET", "/api/operations", Some(&t), None)
        .json()
        .as_array()
        .map(Vec::len);
    assert_eq!(before, after);
    // Non-Latin text and emoji are fine.
    assert_eq!(
        create("Firmware für das Board — ファームウェア 🚀").status,
        201
    );

    // Sign-order descriptions follow the same rule, and nothing is spent.
    let op = s.create_operation("orderer-client", &[("key1", 1)], 60_000);
    let d = hash("sha256", b"data");
    let mut b = sign_body(
        &op,
        "key1",
        &digest_info("sha256", &d),
        "digestinfo",
        "asn1",
    );
    for (description, code) in [
        ("build 42 \u{202E}gnp.exe", "U+202E"),
        ("build 42\0 trailing", "U+0000"),
    ] {
        b["description"] = json!(description);
        let r = s.api_request("POST", "/api/signorders", Some(&t), Some(&b));
        assert_error(&r, 400, "invalid_request");
        assert!(r.json()["message"].as_str().unwrap().contains(code));
    }
    assert_eq!(s.operation(&op)["keyusagerestrictions"][0]["usagecount"], 0);
    b["description"] = json!("build 42 of the firmware");
    assert_eq!(
        s.api_request("POST", "/api/signorders", Some(&t), Some(&b))
            .status,
        201
    );
}
