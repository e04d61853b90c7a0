//! Helpers for the `ksc` tests: the library helpers of common/tests/support plus runs of the
//! real `ksc` binary against a dev KeyServer.
#![allow(dead_code)] // each test binary uses a different subset

use std::process::{Command, Output};

use ks_common::config::{ALL_VARIABLES, AMBIENT_VARIABLES};

#[path = "../../../tests/support/mod.rs"]
mod shared;
pub use shared::*;

/// Runs the real `ksc` binary with exactly these KSC_* (and CI runner) variables.
pub fn ksc_cmd(env: &[(String, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ksc"));
    for v in ALL_VARIABLES.iter().chain(AMBIENT_VARIABLES.iter()) {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.args(args);
    cmd
}

/// Runs `ksc` and returns its output.
pub fn ksc(env: &[(String, String)], args: &[&str]) -> Output {
    ksc_cmd(env, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ksc: {e}"))
}

/// Runs `ksc`, asserts success, returns stdout.
pub fn ksc_ok(env: &[(String, String)], args: &[&str]) -> String {
    let out = ksc(env, args);
    assert!(
        out.status.success(),
        "ksc {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs `ksc`, asserts exit code `code`, returns stderr.
pub fn ksc_code(env: &[(String, String)], args: &[&str], code: i32) -> String {
    let out = ksc(env, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "ksc {args:?}: {stderr}");
    stderr
}
