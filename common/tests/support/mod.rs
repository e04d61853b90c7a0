//! Shared helpers for the integration tests: clients against a dev KeyServer (the `ksc` runs are
//! in common/cli/tests/support, which includes this file).
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;

use ks_common::{Client, Config, Settings};
use ks_devserver::harness::DevServer;

/// Settings for `user` with client credentials (default demo secret).
pub fn user_settings(srv: &DevServer, user: &str) -> Vec<(String, String)> {
    vec![
        ("KSC_API_SERVER".into(), srv.api_url().to_string()),
        ("KSC_AUTH_SERVER".into(), srv.auth_url().to_string()),
        ("KSC_CA_FILE".into(), srv.ca_file().display().to_string()),
        ("KSC_CLIENT_ID".into(), user.to_string()),
        ("KSC_CLIENT_SECRET".into(), format!("{user}-secret")),
    ]
}

/// Adds or replaces `key` in `env`.
pub fn with(mut env: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value.to_string()));
    env
}

/// A library client from explicit settings only (the process environment is not consulted,
/// so tests cannot pick up a developer's KSC_* variables).
pub fn client(settings: &[(String, String)]) -> Client {
    let s: Settings = settings.iter().cloned().collect();
    Client::new(Config::resolve(&s, &Settings::new()).expect("test config"))
}

/// Fails (never skips) when a tool is missing, naming the Debian package.
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: apt-get install {package}"
    );
}

/// Writes `data` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write test file");
    p.display().to_string()
}
