//! `ksc operation list`, consistent `--json`, shell completions and the man page, through the
//! real `ksc` against the dev KeyServer.

mod support;

use ks_devserver::harness::DevServer;
use serde_json::Value;
use support::*;

fn json(env: &[(String, String)], args: &[&str]) -> Value {
    let out = ksc_ok(env, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn list_filters_and_json_is_typed() {
    let srv = DevServer::start();
    let a = srv.create_operation("orderer-client", &[("key2", 1)], 300_000);
    let b = srv.create_operation("orderer-client", &[("key1", 1)], 300_000);
    let c = srv.create_operation("orderer-clientkey2", &[("key2", 1)], 300_000);
    let orderer = user_settings(&srv, "orderer-client");
    let admin = user_settings(&srv, "adminclient");

    // Default: pending only (b needs no approval, so it is approved).
    let table = ksc_ok(&admin, &["operation", "list"]);
    assert!(table.starts_with("ID\tSTATUS\tCREATED BY"), "{table}");
    let pending = ids(&json(&admin, &["operation", "list", "--json"]));
    assert!(
        pending.contains(&a) && pending.contains(&c) && !pending.contains(&b),
        "{pending:?}"
    );
    let all = ids(&json(&admin, &["operation", "list", "--all", "--json"]));
    assert!(all.contains(&b), "{all:?}");
    // --mine: the creator's own, in every state.
    let mine = ids(&json(
        &orderer,
        &["operation", "list", "--mine", "--all", "--json"],
    ));
    assert_eq!(mine, vec![a.clone(), b.clone()]);
    let mine_pending = json(&orderer, &["operation", "list", "--mine", "--json"]);
    assert_eq!(ids(&mine_pending), vec![a.clone()]);
    assert_eq!(
        mine_pending[0]["approved"], false,
        "a boolean: {mine_pending}"
    );
    assert_eq!(mine_pending[0]["status"], "pending");
    ksc_code(&admin, &["operation", "list", "--pending", "--all"], 2);

    // status/approve --json: booleans as booleans.
    let st = json(&orderer, &["operation", "status", &b, "--json"]);
    assert_eq!(st["approved"], true, "{st}");
    let st = json(
        &user_settings(&srv, "approver-key2"),
        &["operation", "approve", &a, "--json"],
    );
    assert_eq!(st["approved"], true, "{st}");

    // cert --json: the PEM inside JSON.
    let cert = json(&orderer, &["cert", "key1", "--json"]);
    assert_eq!(cert["keyid"], "key1");
    assert!(
        cert["certificate_pem"]
            .as_str()
            .unwrap_or_default()
            .starts_with("-----BEGIN CERTIFICATE-----"),
        "{cert}"
    );
    assert!(cert["public_key_pem"]
        .as_str()
        .unwrap_or_default()
        .contains("PUBLIC KEY"));
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    // No configuration needed.
    let bash = ksc_ok(&[], &["completions", "bash"]);
    assert!(
        bash.contains("_ksc") && bash.contains("--out-dir") && bash.contains("list"),
        "{bash}"
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(!ksc_ok(&[], &["completions", shell]).is_empty(), "{shell}");
    }
    let err = ksc_code(&[], &["completions", "tcsh"], 2);
    assert!(err.contains("tcsh"), "{err}");
    let man = ksc_ok(&[], &["man"]);
    assert!(man.starts_with(".ie") || man.contains(".TH ksc"), "{man}");
    assert!(
        man.contains("operation") && man.contains("Exit codes"),
        "{man}"
    );
}
