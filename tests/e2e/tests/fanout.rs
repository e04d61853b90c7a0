//! Fan-out (issue 14, item 5): 200 single-signature processes started at the
//! same instant — `openssl dgst -provider keyserver`, `pkcs11-tool --sign` and
//! libp11's engine in turn — against one dev KeyServer and one operation with
//! exactly 200 uses of key1. All 200 succeed, the server counts 200 uses, every
//! signature verifies against the server's certificate, and the 201st is
//! refused. Requests per signature and the wall time are printed, not asserted
//! (the benchmark reports them; see scripts/bench.sh).

use ks_devserver::harness::DevServer;
use ks_e2e::fanout_support::{fan_out, prepare, FanoutSetup, FanoutTool};
use ks_e2e::pkcs11_support::{libp11_engine, module_path, openssl, pkcs11_tool};
use ks_e2e::provider_support::provider_library;
use serde_json::Value;

const PROCESSES: usize = 200;

/// key1's `usagecount` in the operation's status.
fn uses_of(server: &DevServer, op: &str, keyid: &str) -> u64 {
    let status = server.operation(op);
    status["keyusagerestrictions"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["keyid"] == keyid))
        .and_then(|r| r["usagecount"].as_u64())
        .unwrap_or_else(|| panic!("no usagecount for {keyid} in {status}"))
}

fn counter(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {stats}"))
}

#[test]
fn two_hundred_processes_at_once_spend_exactly_two_hundred_uses() {
    let server = DevServer::start();
    let op = server.create_operation("orderer-client", &[("key1", PROCESSES as u32)], 600_000);
    let status = server.operation(&op);
    assert_eq!(
        status["status"], "approved",
        "key1 needs no approval: {status}"
    );
    let token = server.token("orderer-client");
    let mut env = server.client_env(&token, &op);
    env.push(("KSC_OPERATION_DESCRIPTION".into(), "fan-out test".into()));
    let dir = server.data_dir().join("fanout");
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    let setup = FanoutSetup {
        dir,
        env,
        openssl: openssl(),
        pkcs11_tool: pkcs11_tool(),
        module: module_path(),
        provider: provider_library(),
        engine: libp11_engine(),
        keyid: "key1".into(),
        rsa: true,
        certificate: server.data_dir().join("keys/key1.cert.pem"),
    };

    let fanout = prepare(&setup, PROCESSES).expect("200 processes spawned at the gate");
    // Two reads in a row: what reading the counters itself costs.
    let probe = server.stats();
    let before = server.stats();
    let run = fanout.release().expect("the fan-out ran");
    let after = server.stats();

    let failures = run.failures();
    assert!(
        failures.is_empty(),
        "{} of {PROCESSES} processes failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for tool in FanoutTool::ALL {
        let n = run.outcomes.iter().filter(|o| o.tool == tool).count();
        assert!(n >= PROCESSES / 3, "{} ran {n} times", tool.name());
    }
    assert_eq!(uses_of(&server, &op, "key1"), PROCESSES as u64);
    let d = |name: &str| counter(&after, name) - counter(&before, name);
    assert_eq!(d("signorders"), PROCESSES as u64, "one sign order each");
    let unverified = run.unverified(&setup).expect("verification ran");
    assert!(
        unverified.is_empty(),
        "signatures that do not verify:\n{}",
        unverified.join("\n")
    );
    // Less what one read of the counters costs (its own request, maybe a handshake).
    let reading = |name: &str| counter(&before, name) - counter(&probe, name);
    let requests = d("requests") - reading("requests");
    let handshakes = d("tls_handshakes") - reading("tls_handshakes");
    println!(
        "fan-out: {PROCESSES} processes, wall {:.2} s, {requests} requests = {:.2} per signature, \
         {} TLS handshakes, {} tokens issued, peak {} sign orders in flight",
        run.wall.as_secs_f64(),
        requests as f64 / PROCESSES as f64,
        handshakes,
        d("tokens"),
        counter(&after, "signorders_max_in_flight"),
    );

    // The operation is spent: one more process is refused and nothing changes.
    let extra = fan_out(&setup, 1).expect("the extra process ran");
    assert_eq!(
        extra.failures().len(),
        1,
        "a 201st signature must be refused: {:?}",
        extra.outcomes[0].output
    );
    let stderr = String::from_utf8_lossy(&extra.outcomes[0].output.stderr).to_lowercase();
    assert!(
        stderr.contains("exhausted") || stderr.contains("usage"),
        "the refusal names the spent uses: {stderr}"
    );
    assert_eq!(uses_of(&server, &op, "key1"), PROCESSES as u64);
    assert_eq!(
        counter(&server.stats(), "signorders"),
        counter(&after, "signorders")
    );
}
