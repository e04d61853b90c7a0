//! Command line and the TOML configuration file.
//!
//! The command line follows the contract in the project notes exactly; the
//! file adds what does not fit on a command line (users, keys, external
//! issuers). Command-line values win over the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::faults::FaultConfig;
use crate::util::parse_duration;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Options {
    /// State directory (CA, keys, database).
    pub data_dir: PathBuf,
    /// Optional TOML configuration file.
    pub config: Option<PathBuf>,
    /// Auth server listen address.
    pub auth_listen: SocketAddr,
    /// API server listen address.
    pub api_listen: SocketAddr,
    /// Where to write the ready JSON (atomically).
    pub ready_file: Option<PathBuf>,
    /// Lifetime of issued access tokens (overrides the file).
    pub token_lifetime: Option<Duration>,
    /// Shared cache of generated private keys.
    pub key_cache: Option<PathBuf>,
    /// Permit binding a non-loopback address.
    pub allow_non_loopback: bool,
    /// Injected faults (all off by default).
    pub faults: FaultConfig,
    /// Hold every client `GET /api/keys` until the test releases it
    /// ([`crate::faults::HoldGate`]).
    pub hold_keys: bool,
    /// Exit when stdin reaches end of file (the test harness holds the other
    /// end, so a server never outlives the test process that started it).
    pub watch_stdin: bool,
}

/// The usage text for `--help` and for argument errors.
pub const USAGE: &str = "usage: ks-devserver [--data-dir DIR] [--config FILE.toml] \
[--auth-listen 127.0.0.1:8300] [--api-listen 127.0.0.1:8200] [--ready-file FILE] \
[--token-lifetime 1h] [--key-cache DIR] [--allow-non-loopback] [--fault-latency 50ms] \
[--fault-5xx 0.2] [--fault-429 0.1] [--fault-drop 0.1] [--fault-hold-keys] [--watch-stdin]";

impl Default for Options {
    fn default() -> Self {
        Options {
            data_dir: PathBuf::from("ks-devserver-data"),
            config: None,
            auth_listen: SocketAddr::from(([127, 0, 0, 1], 8300)),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 8200)),
            ready_file: None,
            token_lifetime: None,
            key_cache: None,
            allow_non_loopback: false,
            faults: FaultConfig::default(),
            hold_keys: false,
            watch_stdin: false,
        }
    }
}

fn fraction(flag: &str, v: &str) -> Result<f64, String> {
    let f: f64 = v
        .parse()
        .map_err(|_| format!("{flag} wants a fraction between 0 and 1, got {v:?}"))?;
    if !(0.0..=1.0).contains(&f) {
        return Err(format!("{flag} wants a fraction between 0 and 1, got {v}"));
    }
    Ok(f)
}

impl Options {
    /// Parses the arguments after the program name. `Ok(None)` means `--help`.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Option<Options>, String> {
        let mut o = Options::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            // Accept both `--flag value` and `--flag=value`.
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<String, String> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => it.next().ok_or_else(|| format!("{name} needs a value")),
                }
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--data-dir" => o.data_dir = PathBuf::from(value(&flag)?),
                "--config" => o.config = Some(PathBuf::from(value(&flag)?)),
                "--auth-listen" => {
                    let v = value(&flag)?;
                    o.auth_listen = v
                        .parse()
                        .map_err(|_| format!("--auth-listen wants IP:PORT, got {v:?}"))?
                }
                "--api-listen" => {
                    let v = value(&flag)?;
                    o.api_listen = v
                        .parse()
                        .map_err(|_| format!("--api-listen wants IP:PORT, got {v:?}"))?
                }
                "--ready-file" => o.ready_file = Some(PathBuf::from(value(&flag)?)),
                "--token-lifetime" => {
                    let v = value(&flag)?;
                    let d = parse_duration(&v).map_err(|e| format!("--token-lifetime: {e}"))?;
                    if d < Duration::from_secs(1) {
                        return Err("--token-lifetime must be at least 1s".into());
                    }
                    o.token_lifetime = Some(d);
                }
                "--key-cache" => o.key_cache = Some(PathBuf::from(value(&flag)?)),
                "--allow-non-loopback" => o.allow_non_loopback = true,
                "--watch-stdin" => o.watch_stdin = true,
                "--fault-latency" => {
                    let v = value(&flag)?;
                    o.faults.latency =
                        parse_duration(&v).map_err(|e| format!("--fault-latency: {e}"))?;
                }
                "--fault-5xx" => o.faults.p_5xx = fraction(&flag, &value(&flag)?)?,
                "--fault-429" => o.faults.p_429 = fraction(&flag, &value(&flag)?)?,
                "--fault-drop" => o.faults.p_drop = fraction(&flag, &value(&flag)?)?,
                "--fault-hold-keys" if inline.is_none() => o.hold_keys = true,
                "--fault-hold-keys" => return Err("--fault-hold-keys takes no value".into()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if !o.allow_non_loopback {
            for (name, addr) in [("auth", o.auth_listen), ("api", o.api_listen)] {
                if !addr.ip().is_loopback() {
                    return Err(format!(
                        "refusing to listen on non-loopback {name} address {addr}; \
                         pass --allow-non-loopback to do that on purpose"
                    ));
                }
            }
        }
        Ok(Some(o))
    }
}

/// The TOML configuration file. Unknown fields are an error here (unlike the
/// API) because a typo in a test configuration must not pass silently.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Token lifetime, e.g. `"1h"` (the command line wins).
    pub token_lifetime: Option<String>,
    /// `iss` of the tokens this server issues.
    pub issuer: Option<String>,
    /// `aud` the API requires in its own tokens.
    pub audience: Option<String>,
    /// Extra DNS names / IPs for the TLS server certificate.
    #[serde(default)]
    pub tls_names: Vec<String>,
    /// Request body limit in bytes.
    pub max_body_bytes: Option<usize>,
    /// Users: demo users can get a new secret; new users need rights.
    #[serde(default)]
    pub users: BTreeMap<String, UserConfig>,
    /// Replaces the default key set when present.
    pub keys: Option<Vec<KeyConfig>>,
    /// Generates many extra keys (benchmarks).
    pub extra_keys: Option<ExtraKeys>,
    /// Trusted external JWT issuers (CI systems).
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
    /// Limits on failed credential checks (token endpoint and web login).
    #[serde(default)]
    pub credential_limits: crate::limits::CredentialLimits,
    /// Sign SHA-1 DigestInfo inputs (`CKM_RSA_PKCS`, legacy pipelines); refused by default,
    /// as the clients' digest policy refuses them without `KSC_ALLOW_SHA1=1`.
    #[serde(default)]
    pub allow_sha1: bool,
}

/// One user in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Client secret (default `<name>-secret`).
    pub secret: Option<String>,
    /// May create operations.
    pub create: Option<bool>,
    /// Keys it may sign with (`"*"` = all).
    pub sign: Option<Vec<String>>,
    /// Keys it may approve (`"*"` = all).
    pub approve: Option<Vec<String>>,
    /// May see every operation and the audit log.
    pub admin: Option<bool>,
}

/// One key in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Key id, e.g. `key1`.
    pub id: String,
    /// `RSA-2048`, `RSA-3072`, `RSA-4096`, `EC-P256`, `EC-P384`, `EC-P521`.
    pub algorithm: String,
    /// Required approvals.
    #[serde(default)]
    pub approvers: u32,
    /// Free text for `keyinfo`.
    pub info: Option<String>,
}

/// N generated keys named `<prefix><start..start+count>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraKeys {
    /// How many.
    pub count: u32,
    /// Name prefix (default `key`).
    pub prefix: Option<String>,
    /// First number (default: one after the highest default key, 7).
    pub start: Option<u32>,
    /// Algorithm (default `EC-P256`, cheap to generate).
    pub algorithm: Option<String>,
    /// Required approvals (default 0).
    pub approvers: Option<u32>,
}

/// An external issuer whose JWTs are accepted (like KeyServer accepting the
/// GitLab CI `id_tokens`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Exact `iss` value.
    pub issuer: String,
    /// Required `aud` value.
    pub audience: String,
    /// JWKS file with the issuer's public keys (relative to the config file).
    pub jwks_file: PathBuf,
    /// Claim mappings; the first that matches gives the token a demo user's rights.
    #[serde(default)]
    pub map: Vec<ClaimMapping>,
}

/// `claims` must all equal the token's claims; then the token has `user`'s rights.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMapping {
    /// Claim name → required value, e.g. `project_path = "group/app"`, `ref = "main"`.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// The user whose rights the token gets.
    pub user: String,
}

impl FileConfig {
    /// Reads the file; relative JWKS paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        let mut cfg: FileConfig =
            toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for iss in &mut cfg.issuers {
            if iss.jwks_file.is_relative() {
                iss.jwks_file = base.join(&iss.jwks_file);
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_contract_flags() {
        let o = Options::parse(args(&[
            "--data-dir",
            "/tmp/x",
            "--auth-listen",
            "127.0.0.1:0",
            "--api-listen=127.0.0.1:0",
            "--token-lifetime",
            "5s",
            "--fault-5xx",
            "0.2",
            "--fault-latency",
            "50ms",
            "--fault-hold-keys",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.api_listen.port(), 0);
        assert_eq!(o.token_lifetime, Some(Duration::from_secs(5)));
        assert_eq!(o.faults.p_5xx, 0.2);
        assert_eq!(o.faults.latency, Duration::from_millis(50));
        assert!(o.hold_keys);
        assert!(!Options::parse(args(&[])).unwrap().unwrap().hold_keys);
    }

    #[test]
    fn refuses_non_loopback_and_bad_values() {
        assert!(Options::parse(args(&["--api-listen", "0.0.0.0:1"])).is_err());
        assert!(
            Options::parse(args(&["--api-listen", "0.0.0.0:1", "--allow-non-loopback"])).is_ok()
        );
        assert!(Options::parse(args(&["--fault-429", "2"])).is_err());
        assert!(Options::parse(args(&["--bogus"])).is_err());
        assert!(Options::parse(args(&["--fault-hold-keys=1"])).is_err());
        assert!(Options::parse(args(&["--data-dir"])).is_err());
    }
}
