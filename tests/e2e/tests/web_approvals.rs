//! The approvers' web page in a real headless Chromium (issue 7): an
//! approver's click lets a waiting `ksc operation wait` proceed; the creator
//! cannot approve; a key3 operation needs two different approvers; the page
//! follows changes by itself; screenshots of the list and the audit log.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ks_devserver::harness::DevServer;
use ks_e2e::web_support::{ksc_binary, wait_until, Browser};
use serde_json::json;

/// Kills the child if the test fails before it exits.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn approvers(s: &DevServer, op: &str, key: &str) -> Vec<String> {
    let doc = s.operation(op);
    doc["keyusagerestrictions"]
        .as_array()
        .and_then(|a| a.iter().find(|k| k["keyid"] == key))
        .and_then(|k| k["approvedby"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| panic!("no {key} in {doc}"))
}

#[test]
fn approver_key4_approves_in_the_browser_and_the_waiting_pipeline_proceeds() {
    let server = DevServer::start();
    let ksc = ksc_binary();
    // The pipeline: orderer-client creates the operation and waits for it.
    let op = server.create_operation("orderer-client", &[("key1", 1), ("key4", 1)], 300_000);
    let token = server.token("orderer-client");
    let mut cmd = Command::new(&ksc);
    cmd.args(["operation", "wait", &op, "--timeout", "3m"])
        .env_remove("KSC_CONFIG")
        .env_remove("KSC_APPROVAL_TIMEOUT")
        .envs(server.client_env(&token, &op))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut waiter = Reaper(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", ksc.display())),
    );
    let stderr = waiter.0.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // It is really waiting before anyone clicks.
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("ksc operation wait printed no progress: {e}"));
    assert!(first.contains(&op), "progress line {first:?}");
    assert!(
        matches!(waiter.0.try_wait(), Ok(None)),
        "ksc must still be waiting"
    );

    let b = Browser::start(&server);
    b.login("approver-key4");
    let row = format!("#op-{op}");
    let text = b.text(&row);
    for needle in [
        "Operation created by the ks-devserver test harness",
        "orderer-client",
        "key4: used 0 of 1; approvals 0 of 1",
        "key1: used 0 of 1; approvals 0 of 0",
        "pending",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in row {text:?}");
    }
    let left = b.text(&format!("{row} time.left"));
    assert!(
        left.ends_with('s') || left.ends_with('m'),
        "time left {left:?}"
    );
    b.screenshot("web-operations-list");

    // Approve, with the confirmation step.
    b.click(&format!("#approve-{op}"));
    assert!(b
        .text("#confirm")
        .contains(&format!("Approve operation {op}")));
    assert_eq!(
        b.text("#description"),
        "Operation created by the ks-devserver test harness"
    );
    assert!(
        matches!(waiter.0.try_wait(), Ok(None)),
        "nothing approved before the confirmation"
    );
    b.click("#confirm");
    b.wait_path("/ui/");
    b.wait_text(
        "#flash",
        &format!("You approved operation {op}; it is now approved."),
    );

    // The waiting pipeline proceeds.
    let status = wait_until(
        "`ksc operation wait` to return",
        Duration::from_secs(60),
        || waiter.0.try_wait().ok().flatten(),
    );
    let mut out = String::new();
    if let Some(mut o) = waiter.0.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    assert!(
        status.success(),
        "ksc operation wait exited with {status}; stdout {out:?}"
    );
    assert!(
        out.contains(&format!("operation {op}: approved")),
        "stdout {out:?}"
    );
    assert_eq!(server.operation(&op)["status"], "approved");
    assert_eq!(approvers(&server, &op, "key4"), ["approver-key4"]);

    // The page follows changes without a reload: a new operation appears,
    // and leaves when it is approved through the API.
    let marker = json!(b.execute(
        "document.body.dataset.marker = 'same-page'; return 1;",
        json!([])
    ));
    assert_eq!(marker, json!(1));
    let op2 = server.create_operation("orderer-clientkey4", &[("key4", 2)], 300_000);
    b.wait_for(&format!("#op-{op2}"));
    server.approve("approver-key4", &op2);
    b.wait_gone(&format!("#op-{op2}"));
    let still = b.execute("return document.body.dataset.marker || null;", json!([]));
    assert_eq!(
        still,
        json!("same-page"),
        "the list was updated in place, not reloaded"
    );
}

#[test]
fn the_creator_cannot_approve_and_key3_needs_two_different_approvers() {
    let server = DevServer::start();
    let own = server.create_operation("adminuser", &[("key4", 1)], 300_000);
    let op3 = server.create_operation("orderer-client", &[("key3", 1)], 300_000);
    let b = Browser::start(&server);

    // Logged out, every page leads to the login form; a wrong password says so.
    b.open("/ui/audit");
    b.wait_path("/ui/login");
    b.fill("#username", "adminuser");
    b.fill("#password", "not-the-secret");
    b.click("#login");
    b.wait_text("#login-error", "Wrong user name or password.");
    assert_eq!(b.path(), "/ui/login");

    // Four-eyes: adminuser created `own`; the page offers no approval...
    b.login("adminuser");
    let actions = b.text(&format!("#op-{own} .actions"));
    assert!(actions.contains("four-eyes rule"), "actions {actions:?}");
    assert!(
        b.find(&format!("#approve-{own}")).is_none(),
        "no approve button for the creator"
    );
    // ...and refuses it when forced (a hand-made form with a valid token).
    b.execute(
        "const f = document.createElement('form');
         f.method = 'post'; f.action = '/ui/operations/' + arguments[0] + '/approve';
         const t = document.createElement('input'); t.type = 'hidden'; t.name = 'csrf';
         t.value = document.querySelector('input[name=csrf]').value;
         f.appendChild(t); document.body.appendChild(f); f.submit(); return null;",
        json!([own]),
    );
    b.wait_text(
        "#error",
        &format!("four-eyes rule: adminuser created operation {own}"),
    );
    assert_eq!(server.operation(&own)["status"], "pending");
    assert!(approvers(&server, &own, "key4").is_empty());
    b.open("/ui/");
    b.logout();
    b.open("/ui/");
    b.wait_path("/ui/login");

    // key3 needs two approvals: approver-key3 gives one...
    b.login("approver-key3");
    b.click(&format!("#approve-{op3}"));
    b.click("#confirm");
    b.wait_text(
        "#flash",
        &format!("You approved operation {op3}; it is still pending: key3 has 1 of 2 approvals"),
    );
    let row = b.text(&format!("#op-{op3}"));
    assert!(
        row.contains("approvals 1 of 2 by approver-key3"),
        "row {row:?}"
    );
    assert!(
        row.contains("You have approved; waiting for other approvers."),
        "row {row:?}"
    );
    assert!(
        b.find(&format!("#approve-{op3}")).is_none(),
        "no second approval by the same user"
    );
    // ...and cannot give a second one, not even by going to the form directly.
    b.open(&format!("/ui/operations/{op3}/approve"));
    b.wait_text("#error", "nothing for you to approve");
    assert!(b.find("#confirm").is_none());
    assert_eq!(server.operation(&op3)["status"], "pending");
    assert_eq!(approvers(&server, &op3, "key3"), ["approver-key3"]);
    b.open("/ui/");
    b.logout();

    // A second, different approver with key3 rights completes it.
    b.login("adminuser");
    b.click(&format!("#approve-{op3}"));
    b.click("#confirm");
    b.wait_text(
        "#flash",
        &format!("You approved operation {op3}; it is now approved."),
    );
    b.wait_text(&format!("#op-{op3} .status"), "approved");
    assert_eq!(server.operation(&op3)["status"], "approved");
    assert_eq!(
        approvers(&server, &op3, "key3"),
        ["approver-key3", "adminuser"]
    );
    b.screenshot("web-operations-admin");

    // The audit log, filtered by operation, shows both approvals and the refusal.
    b.click("a[href='/ui/audit']");
    b.wait_for("#audit");
    b.fill("#f-operation", &op3);
    b.fill("#f-action", "approve");
    b.click("#filter");
    b.wait_text("#audit caption", "2 of 2 entries");
    let log = b.text("#audit");
    assert!(
        log.contains("approver-key3") && log.contains("adminuser"),
        "audit {log:?}"
    );
    b.screenshot("web-audit-log");
    b.fill("#f-operation", &own);
    b.click("#filter");
    b.wait_text("#audit", "forbidden");
}
