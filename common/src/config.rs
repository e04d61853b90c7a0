//! Client configuration: defaults < `KSC_CONFIG` file < caller overrides < environment.
//!
//! The names are those of API.md §9 (the environment variable names are also the keys of
//! [`Settings`] and of the config file). The environment wins because it is what a CI job or a
//! user sets last for one run; overrides are the provider's openssl.cnf parameters.
//!
//! The config file is either JSON (an object whose keys are the variable names, or the old Go
//! client's keys `auth-server`, `api-server`, `username`, `password`, `op-id`, `op-desc`), or
//! `KEY=VALUE` lines (`#` comments, optional `export ` and quotes), like an env file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::error::{Error, Result};

/// Caller-supplied settings, keyed by variable name (`KSC_API_SERVER`, ...).
pub type Settings = BTreeMap<String, String>;

/// API server base URL.
pub const KSC_API_SERVER: &str = "KSC_API_SERVER";
/// Operation to sign under.
pub const KSC_OPERATION_ID: &str = "KSC_OPERATION_ID";
/// Description sent with sign orders.
pub const KSC_OPERATION_DESCRIPTION: &str = "KSC_OPERATION_DESCRIPTION";
/// Bearer token.
pub const KSC_ID_TOKEN: &str = "KSC_ID_TOKEN";
/// Per-request timeout (Go duration).
pub const KSC_HTTP_CLIENT_TIMEOUT: &str = "KSC_HTTP_CLIENT_TIMEOUT";
/// Auth server base URL for client credentials.
pub const KSC_AUTH_SERVER: &str = "KSC_AUTH_SERVER";
/// OAuth client id.
pub const KSC_CLIENT_ID: &str = "KSC_CLIENT_ID";
/// OAuth client secret.
pub const KSC_CLIENT_SECRET: &str = "KSC_CLIENT_SECRET";
/// Extra PEM trust anchors.
pub const KSC_CA_FILE: &str = "KSC_CA_FILE";
/// Config file path.
pub const KSC_CONFIG: &str = "KSC_CONFIG";
/// How long a signature may wait for a pending approval.
pub const KSC_APPROVAL_TIMEOUT: &str = "KSC_APPROVAL_TIMEOUT";
/// Log level and optional file.
pub const KSC_LOG: &str = "KSC_LOG";
/// Total time one library call may spend talking to KeyServer, retries included (Go duration).
pub const KSC_DEADLINE: &str = "KSC_DEADLINE";
/// PEM CA certificate(s) that issue KeyServer's signing certificates; when set, only keys whose
/// certificate they issued (and that are valid and usable for signing) are offered.
pub const KSC_SIGNING_CA_FILE: &str = "KSC_SIGNING_CA_FILE";
/// Pinned certificate or public-key SHA-256 fingerprints: `key1=sha256:HEX,key2=sha256:HEX`.
pub const KSC_KEY_PINS: &str = "KSC_KEY_PINS";

/// Log line format: `text` (default) or `json`.
pub const KSC_LOG_FORMAT: &str = "KSC_LOG_FORMAT";
/// The approvers' page, linked from `ksc operation wait`.
pub const KSC_APPROVAL_URL: &str = "KSC_APPROVAL_URL";
/// `1` opts this process in to signing SHA-1 digests (legacy pipelines). Read from the
/// environment only, by `digest_policy::allow_sha1_from_env`, so it is not in [`ALL_VARIABLES`].
pub const KSC_ALLOW_SHA1: &str = "KSC_ALLOW_SHA1";

/// Whether the system trust store backs `KSC_CA_FILE` (default true).
pub const KSC_SYSTEM_ROOTS: &str = "KSC_SYSTEM_ROOTS";
/// The per-user cache of the key catalog and client-credential tokens: `on` (default), `off`,
/// or an absolute directory to use instead of `$XDG_CACHE_HOME/keyserver-signing`.
pub const KSC_CACHE: &str = "KSC_CACHE";

/// A file holding the bearer token (a JWT), re-read when the token in it nears expiry or is
/// refused: GitLab `id_tokens` written to a file, Kubernetes/Vault rotated tokens.
pub const KSC_ID_TOKEN_FILE: &str = "KSC_ID_TOKEN_FILE";
/// Which identity to use: `auto` (default), `token`, `file`, `client` or `github`.
pub const KSC_ID_TOKEN_SOURCE: &str = "KSC_ID_TOKEN_SOURCE";
/// The audience asked of GitHub Actions for its OIDC token (default: `KSC_API_SERVER`).
pub const KSC_OIDC_AUDIENCE: &str = "KSC_OIDC_AUDIENCE";

/// GitHub Actions' ID token request URL (set by the runner when the job has
/// `permissions: id-token: write`). Read from the environment only.
pub const ACTIONS_ID_TOKEN_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// The bearer token for [`ACTIONS_ID_TOKEN_REQUEST_URL`] (a secret, never logged). Read from the
/// environment only.
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// Variables set by a CI system, not by the user: read from the environment only (never from a
/// config file or the caller's overrides).
pub const AMBIENT_VARIABLES: [&str; 2] =
    [ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN];

/// Every variable this crate reads, in documentation order.
pub const ALL_VARIABLES: [&str; 22] = [
    KSC_API_SERVER,
    KSC_OPERATION_ID,
    KSC_OPERATION_DESCRIPTION,
    KSC_ID_TOKEN,
    KSC_HTTP_CLIENT_TIMEOUT,
    KSC_AUTH_SERVER,
    KSC_CLIENT_ID,
    KSC_CLIENT_SECRET,
    KSC_CA_FILE,
    KSC_CONFIG,
    KSC_APPROVAL_TIMEOUT,
    KSC_LOG,
    KSC_DEADLINE,
    KSC_SIGNING_CA_FILE,
    KSC_KEY_PINS,
    KSC_LOG_FORMAT,
    KSC_APPROVAL_URL,
    KSC_SYSTEM_ROOTS,
    KSC_CACHE,
    KSC_ID_TOKEN_FILE,
    KSC_ID_TOKEN_SOURCE,
    KSC_OIDC_AUDIENCE,
];

/// Default per-request timeout (the Go client's default).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Default total time of one library call (`KSC_DEADLINE`): room for several per-attempt
/// timeouts and backoffs, short enough that a stuck server does not hang a pipeline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// Description sent with sign orders when none is configured.
pub const DEFAULT_DESCRIPTION: &str = "signature requested through ks-common";

/// The old Go client's JSON config keys and the variables they mean.
const LEGACY_KEYS: [(&str, &str); 6] = [
    ("auth-server", KSC_AUTH_SERVER),
    ("api-server", KSC_API_SERVER),
    ("username", KSC_CLIENT_ID),
    ("password", KSC_CLIENT_SECRET),
    ("op-id", KSC_OPERATION_ID),
    ("op-desc", KSC_OPERATION_DESCRIPTION),
];

/// The resolved configuration. `Debug` hides the token and the client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `KSC_API_SERVER`, without trailing `/`.
    pub api_server: Option<String>,
    /// `KSC_AUTH_SERVER`, without trailing `/`.
    pub auth_server: Option<String>,
    /// `KSC_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `KSC_CLIENT_SECRET` (never logged).
    pub client_secret: Option<String>,
    /// `KSC_ID_TOKEN` (never logged).
    pub id_token: Option<String>,
    /// `KSC_OPERATION_ID`.
    pub operation_id: Option<String>,
    /// `KSC_OPERATION_DESCRIPTION`, or [`DEFAULT_DESCRIPTION`].
    pub operation_description: String,
    /// `KSC_HTTP_CLIENT_TIMEOUT`, default 10s.
    pub http_timeout: Duration,
    /// `KSC_CA_FILE`.
    pub ca_file: Option<PathBuf>,
    /// `KSC_APPROVAL_TIMEOUT`, default 0 (do not wait).
    pub approval_timeout: Duration,
    /// `KSC_LOG` as given (parsed by [`crate::log_spec`]).
    pub log: Option<String>,
    /// `KSC_CONFIG`, if a file was read.
    pub config_file: Option<PathBuf>,
    /// `KSC_DEADLINE`, default [`DEFAULT_DEADLINE`].
    pub deadline: Duration,
    /// `KSC_SIGNING_CA_FILE`.
    pub signing_ca_file: Option<PathBuf>,
    /// `KSC_KEY_PINS`: (key id, SHA-256 of its certificate or of its SubjectPublicKeyInfo).
    pub key_pins: Vec<(String, [u8; 32])>,
    /// `KSC_LOG_FORMAT=json`: one JSON object per log line.
    pub log_json: bool,
    /// `KSC_APPROVAL_URL`: the approvers' page for this server (default: the dev server's
    /// `/ui/` when the API server is the dev server).
    pub approval_url: Option<String>,
    /// `KSC_SYSTEM_ROOTS`: trust the system store too (loaded only when `KSC_CA_FILE` alone
    /// does not verify the server).
    pub system_roots: bool,
    /// `KSC_CACHE`: use the per-user cache of the key catalog and tokens.
    pub cache: bool,
    /// `KSC_CACHE=<dir>`: where (default: the XDG cache directory).
    pub cache_dir: Option<PathBuf>,
    /// `KSC_ID_TOKEN_FILE`.
    pub id_token_file: Option<PathBuf>,
    /// `KSC_ID_TOKEN_SOURCE`, default [`IdentitySource::Auto`].
    pub id_token_source: IdentitySource,
    /// `KSC_OIDC_AUDIENCE` (default: the API server URL, see [`Config::oidc_audience`]).
    pub oidc_audience: Option<String>,
    /// GitHub Actions' ID token request URL and bearer token, when the runner set both.
    pub github_oidc: Option<GithubOidc>,
}

/// Where the bearer token comes from (`KSC_ID_TOKEN_SOURCE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdentitySource {
    /// The first one configured: `KSC_ID_TOKEN`, `KSC_ID_TOKEN_FILE`, client credentials,
    /// then GitHub Actions OIDC.
    #[default]
    Auto,
    /// `KSC_ID_TOKEN` only.
    Token,
    /// `KSC_ID_TOKEN_FILE` only.
    File,
    /// Client credentials only.
    Client,
    /// GitHub Actions OIDC only.
    Github,
}

impl IdentitySource {
    /// The value of `KSC_ID_TOKEN_SOURCE` that selects it.
    pub fn name(self) -> &'static str {
        match self {
            IdentitySource::Auto => "auto",
            IdentitySource::Token => "token",
            IdentitySource::File => "file",
            IdentitySource::Client => "client",
            IdentitySource::Github => "github",
        }
    }
}

/// GitHub Actions' token service as the runner announces it. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct GithubOidc {
    /// `ACTIONS_ID_TOKEN_REQUEST_URL` (carries its own query, e.g. `?api-version=2.0`).
    pub request_url: String,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN` (never logged).
    pub request_token: String,
}

impl std::fmt::Debug for GithubOidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubOidc")
            .field("request_url", &crate::redact::userinfo(&self.request_url))
            .field("request_token", &"<hidden>")
            .finish()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hide = |o: &Option<String>| o.as_ref().map(|_| "<hidden>");
        f.debug_struct("Config")
            .field(
                "api_server",
                &self.api_server.as_deref().map(crate::redact::userinfo),
            )
            .field(
                "auth_server",
                &self.auth_server.as_deref().map(crate::redact::userinfo),
            )
            .field("client_id", &self.client_id)
            .field("client_secret", &hide(&self.client_secret))
            .field("id_token", &hide(&self.id_token))
            .field("operation_id", &self.operation_id)
            .field("operation_description", &self.operation_description)
            .field("http_timeout", &self.http_timeout)
            .field("ca_file", &self.ca_file)
            .field("approval_timeout", &self.approval_timeout)
            .field("log", &self.log)
            .field("config_file", &self.config_file)
            .field("deadline", &self.deadline)
            .field("signing_ca_file", &self.signing_ca_file)
            .field("key_pins", &self.key_pins.len())
            .field("log_json", &self.log_json)
            .field("approval_url", &self.approval_url)
            .field("system_roots", &self.system_roots)
            .field("cache", &self.cache)
            .field("cache_dir", &self.cache_dir)
            .field("id_token_file", &self.id_token_file)
            .field("id_token_source", &self.id_token_source)
            .field("oidc_audience", &self.oidc_audience)
            .field("github_oidc", &self.github_oidc)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            api_server: None,
            auth_server: None,
            client_id: None,
            client_secret: None,
            id_token: None,
            operation_id: None,
            operation_description: DEFAULT_DESCRIPTION.to_string(),
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            ca_file: None,
            approval_timeout: Duration::ZERO,
            deadline: DEFAULT_DEADLINE,
            signing_ca_file: None,
            key_pins: Vec::new(),
            log: None,
            config_file: None,
            log_json: false,
            approval_url: None,
            system_roots: true,
            cache: true,
            cache_dir: None,
            id_token_file: None,
            id_token_source: IdentitySource::Auto,
            oidc_audience: None,
            github_oidc: None,
        }
    }
}

impl Config {
    /// Resolves the configuration from the process environment, the `KSC_CONFIG` file and
    /// `overrides` (defaults < file < overrides < environment).
    pub fn load(overrides: &Settings) -> Result<Config> {
        let env: Settings = ALL_VARIABLES
            .iter()
            .chain(AMBIENT_VARIABLES.iter())
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        Config::resolve(overrides, &env)
    }

    /// `load` with no overrides.
    pub fn from_env() -> Result<Config> {
        Config::load(&Settings::new())
    }

    /// The precedence logic with the environment passed in (testable without touching the
    /// process environment). Empty values count as unset, as in the Go client.
    pub fn resolve(overrides: &Settings, env: &Settings) -> Result<Config> {
        for key in overrides.keys() {
            if !ALL_VARIABLES.contains(&key.as_str()) {
                return Err(Error::config(
                    key,
                    format!("unknown setting (known: {})", ALL_VARIABLES.join(", ")),
                ));
            }
        }
        let (config_path, merged) = merge_layers(overrides, env)?;
        let mut c = Config {
            config_file: config_path.map(PathBuf::from),
            ..Config::default()
        };
        let get = |k: &str| merged.get(k).map(|(v, _)| v.trim().to_string());
        c.api_server = get(KSC_API_SERVER)
            .map(|v| check_url(KSC_API_SERVER, &v))
            .transpose()?;
        c.auth_server = get(KSC_AUTH_SERVER)
            .map(|v| check_url(KSC_AUTH_SERVER, &v))
            .transpose()?;
        c.client_id = get(KSC_CLIENT_ID);
        // Secrets keep inner characters exactly; only the line ending is trimmed above.
        c.client_secret = get(KSC_CLIENT_SECRET);
        c.id_token = get(KSC_ID_TOKEN);
        if let Some(t) = &c.id_token {
            if t.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
                return Err(Error::config(
                    KSC_ID_TOKEN,
                    "the token contains whitespace (was the whole curl output pasted?)",
                ));
            }
        }
        c.operation_id = get(KSC_OPERATION_ID);
        if let Some(op) = &c.operation_id {
            if op == "null" || op.contains('/') || op.chars().any(|ch| ch.is_control()) {
                return Err(Error::config(
                    KSC_OPERATION_ID,
                    format!("{op:?} is not an operation id (did creating the operation fail?)"),
                ));
            }
        }
        if let Some(d) = get(KSC_OPERATION_DESCRIPTION) {
            c.operation_description = d;
        }
        if let Some(t) = get(KSC_HTTP_CLIENT_TIMEOUT) {
            c.http_timeout =
                parse_duration(&t).map_err(|e| Error::config(KSC_HTTP_CLIENT_TIMEOUT, e))?;
            if c.http_timeout.is_zero() {
                return Err(Error::config(
                    KSC_HTTP_CLIENT_TIMEOUT,
                    "must be greater than 0",
                ));
            }
        }
        if let Some(t) = get(KSC_APPROVAL_TIMEOUT) {
            c.approval_timeout =
                parse_duration(&t).map_err(|e| Error::config(KSC_APPROVAL_TIMEOUT, e))?;
        }
        c.ca_file = get(KSC_CA_FILE).map(PathBuf::from);
        if let Some(t) = get(KSC_DEADLINE) {
            c.deadline = parse_duration(&t).map_err(|e| Error::config(KSC_DEADLINE, e))?;
            if c.deadline.is_zero() {
                return Err(Error::config(KSC_DEADLINE, "must be greater than 0"));
            }
        }
        c.signing_ca_file = get(KSC_SIGNING_CA_FILE).map(PathBuf::from);
        if let Some(p) = get(KSC_KEY_PINS) {
            c.key_pins = parse_pins(&p).map_err(|e| Error::config(KSC_KEY_PINS, e))?;
        }
        if let Some(v) = get(KSC_SYSTEM_ROOTS) {
            c.system_roots = parse_switch(KSC_SYSTEM_ROOTS, &v)?;
            if !c.system_roots && c.ca_file.is_none() {
                return Err(Error::config(
                    KSC_SYSTEM_ROOTS,
                    "false leaves no trust anchors: set KSC_CA_FILE too",
                ));
            }
        }
        if let Some(v) = get(KSC_CACHE) {
            if v.starts_with('/') {
                c.cache_dir = Some(PathBuf::from(v));
            } else {
                c.cache = parse_switch(KSC_CACHE, &v).map_err(|_| {
                    Error::config(
                        KSC_CACHE,
                        format!("{v:?} is not on, off or an absolute directory"),
                    )
                })?;
            }
        }
        if let Some(l) = get(KSC_LOG) {
            crate::log_spec::LogSpec::parse(&l).map_err(|e| Error::config(KSC_LOG, e))?;
            c.log = Some(l);
        }
        if let Some(f) = get(KSC_LOG_FORMAT) {
            c.log_json = match f.to_ascii_lowercase().as_str() {
                "text" => false,
                "json" => true,
                _ => {
                    return Err(Error::config(
                        KSC_LOG_FORMAT,
                        format!("{f:?} is not a log format (text or json)"),
                    ))
                }
            };
        }
        c.approval_url = get(KSC_APPROVAL_URL)
            .map(|v| check_url(KSC_APPROVAL_URL, &v))
            .transpose()?;
        resolve_identity(&mut c, &get, env)?;
        if c.client_id.is_some() != c.client_secret.is_some() {
            let missing = if c.client_id.is_none() {
                KSC_CLIENT_ID
            } else {
                KSC_CLIENT_SECRET
            };
            return Err(Error::config(
                missing,
                "client credentials need both KSC_CLIENT_ID and KSC_CLIENT_SECRET",
            ));
        }
        Ok(c)
    }

    /// Every variable of [`ALL_VARIABLES`] and [`AMBIENT_VARIABLES`] with the value that wins
    /// and where it comes from,
    /// by the same precedence as [`Config::resolve`] (which it shares). Values are not
    /// checked here (`resolve` does that) and secrets are included as given: mask them with
    /// [`is_secret`] before showing them.
    pub fn effective_settings(overrides: &Settings, env: &Settings) -> Result<Vec<Effective>> {
        let (_, mut merged) = merge_layers(overrides, env)?;
        Ok(ALL_VARIABLES
            .iter()
            .chain(AMBIENT_VARIABLES.iter())
            .map(|&name| match merged.remove(name) {
                Some((value, source)) => Effective {
                    name,
                    value: Some(value),
                    source,
                },
                None => Effective {
                    name,
                    value: default_value(name),
                    source: Source::Default,
                },
            })
            .collect())
    }

    /// The API server URL, or a Config error saying how to set it.
    pub fn require_api_server(&self) -> Result<&str> {
        self.api_server.as_deref().ok_or_else(|| {
            Error::config(
                KSC_API_SERVER,
                "not set; export KSC_API_SERVER=https://keyserver.example:8200",
            )
        })
    }

    /// The operation id, or a Config error saying how to set it.
    pub fn require_operation_id(&self) -> Result<&str> {
        self.operation_id.as_deref().ok_or_else(|| {
            Error::config(
                KSC_OPERATION_ID,
                "not set; create an operation (ksc operation create ... --export) and export KSC_OPERATION_ID",
            )
        })
    }

    /// The audience asked of GitHub Actions: `KSC_OIDC_AUDIENCE`, else the API server URL.
    pub fn oidc_audience(&self) -> Option<&str> {
        self.oidc_audience.as_deref().or(self.api_server.as_deref())
    }

    /// True when a fresh token can be obtained with client credentials.
    pub fn has_client_credentials(&self) -> bool {
        self.auth_server.is_some() && self.client_id.is_some() && self.client_secret.is_some()
    }
}

#[cfg(test)]
mod pipeline_tests {
    use super::*;

    #[test]
    fn api_server_ending_in_api_is_explained() {
        let mut s = Settings::new();
        s.insert(KSC_API_SERVER.into(), "https://ks.example:8200/api/".into());
        let e = Config::resolve(&s, &Settings::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ends in /api") && e.contains("(https://ks.example:8200)"),
            "{e}"
        );
        s.insert(KSC_API_SERVER.into(), "https://ks.example:8200/apis".into());
        assert!(Config::resolve(&s, &Settings::new()).is_ok());
    }

    #[test]
    fn identity_settings_are_checked() {
        let s = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Settings>()
        };
        let err = |p: &[(&str, &str)], env: &[(&str, &str)]| {
            Config::resolve(&s(p), &s(env)).unwrap_err().to_string()
        };
        let api = (KSC_API_SERVER, "https://ks.example:8200");
        let gh = [
            (
                ACTIONS_ID_TOKEN_REQUEST_URL,
                "https://gh.example/t?api-version=2.0",
            ),
            (ACTIONS_ID_TOKEN_REQUEST_TOKEN, "request-secret"),
        ];
        let e = err(&[api, (KSC_ID_TOKEN_SOURCE, "gitlab")], &[]);
        assert!(
            e.contains(KSC_ID_TOKEN_SOURCE) && e.contains("auto, token, file"),
            "{e}"
        );
        let e = err(&[api, (KSC_ID_TOKEN_SOURCE, "github")], &gh[..1]);
        assert!(
            e.contains(ACTIONS_ID_TOKEN_REQUEST_TOKEN) && e.contains("id-token: write"),
            "{e}"
        );
        let e = err(&[api, (KSC_ID_TOKEN_SOURCE, "file")], &[]);
        assert!(
            e.contains("file is chosen but KSC_ID_TOKEN_FILE is not set"),
            "{e}"
        );
        let e = err(&[api, (KSC_OIDC_AUDIENCE, "a b")], &[]);
        assert!(e.contains(KSC_OIDC_AUDIENCE), "{e}");
        // The request token is a secret: never over plain http across a network.
        let plain = [(ACTIONS_ID_TOKEN_REQUEST_URL, "http://gh.example/t"), gh[1]];
        let e = err(&[api], &plain);
        assert!(
            e.contains(ACTIONS_ID_TOKEN_REQUEST_URL) && !e.contains("request-secret"),
            "{e}"
        );
        // ... unless another identity is chosen, when the ambient values are not used.
        assert!(Config::resolve(&s(&[api, (KSC_ID_TOKEN, "t")]), &s(&plain)).is_ok());
        // Ambient variables come from the environment only, never from overrides.
        let c = Config::resolve(&s(&[api]), &s(&gh)).unwrap();
        assert!(c.github_oidc.is_some());
        assert!(!format!("{c:?}").contains("request-secret"));
        assert_eq!(c.oidc_audience(), Some("https://ks.example:8200"));
        assert!(Config::resolve(&s(&[api, gh[0], gh[1]]), &Settings::new()).is_err());
        let c = Config::resolve(&s(&[api, (KSC_OIDC_AUDIENCE, "keyserver")]), &s(&gh)).unwrap();
        assert_eq!(c.oidc_audience(), Some("keyserver"));
    }

    #[test]
    fn log_format_and_approval_url() {
        let mut s = Settings::new();
        s.insert(KSC_LOG_FORMAT.into(), "JSON".into());
        s.insert(KSC_APPROVAL_URL.into(), "https://keyclient.example/".into());
        let c = Config::resolve(&s, &Settings::new()).unwrap();
        assert!(c.log_json);
        assert_eq!(c.approval_url.as_deref(), Some("https://keyclient.example"));
        s.insert(KSC_LOG_FORMAT.into(), "xml".into());
        let e = Config::resolve(&s, &Settings::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("KSC_LOG_FORMAT"), "{e}");
    }
}

/// Where an effective setting comes from (see [`Config::effective_settings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built in (or unset).
    Default,
    /// The `KSC_CONFIG` file at this path.
    File(PathBuf),
    /// A caller override (the provider's openssl.cnf parameters).
    Override,
    /// The environment (`ksc` puts its command-line flags here, above the real environment).
    Env,
}

/// One setting as resolved: its value (`None` when unset) and its source.
#[derive(Clone, PartialEq, Eq)]
pub struct Effective {
    /// The variable name (`KSC_API_SERVER`, ...).
    pub name: &'static str,
    /// The winning value as given (untrimmed), or the default's text; `None` when unset.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: Source,
}

impl std::fmt::Debug for Effective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = match &self.value {
            Some(_) if is_secret(self.name) => Some("<hidden>".to_string()),
            v => v.clone(),
        };
        f.debug_struct("Effective")
            .field("name", &self.name)
            .field("value", &value)
            .field("source", &self.source)
            .finish()
    }
}

/// True for a variable whose value is a credential: the listed ones, and by name any
/// `*SECRET*` or `*_TOKEN` variable, so that a setting added later is hidden by default.
pub fn is_secret(name: &str) -> bool {
    name == KSC_CLIENT_SECRET
        || name == KSC_ID_TOKEN
        || name.contains("SECRET")
        || name.ends_with("_TOKEN")
}

/// The built-in value of a setting, as text (`None`: unset by default).
pub fn default_value(name: &str) -> Option<String> {
    let d = Config::default();
    let switch = |on: bool| if on { "on" } else { "off" }.to_string();
    match name {
        KSC_OPERATION_DESCRIPTION => Some(d.operation_description),
        KSC_HTTP_CLIENT_TIMEOUT => Some(crate::duration::format_duration(d.http_timeout)),
        // Zero: a signature does not wait for approval.
        KSC_APPROVAL_TIMEOUT => Some("0s".to_string()),
        KSC_DEADLINE => Some(crate::duration::format_duration(d.deadline)),
        KSC_LOG => Some("warn".to_string()),
        KSC_LOG_FORMAT => Some(if d.log_json { "json" } else { "text" }.to_string()),
        KSC_SYSTEM_ROOTS => Some(switch(d.system_roots)),
        KSC_CACHE => Some(switch(d.cache)),
        KSC_ID_TOKEN_SOURCE => Some("auto".to_string()),
        KSC_OIDC_AUDIENCE => Some(format!("the {KSC_API_SERVER} value")),
        _ => None,
    }
}

/// Every set variable with its winning value and that value's source.
type Layered = BTreeMap<String, (String, Source)>;

/// The precedence itself: defaults < config file < overrides < environment, empty override
/// and environment values counting as unset. Returns the config file path and every set
/// variable with its value and source.
fn merge_layers(overrides: &Settings, env: &Settings) -> Result<(Option<String>, Layered)> {
    let nonempty = |m: &Settings, k: &str| m.get(k).filter(|v| !v.trim().is_empty()).cloned();
    let config_path = nonempty(env, KSC_CONFIG).or_else(|| nonempty(overrides, KSC_CONFIG));
    let mut merged = BTreeMap::new();
    if let Some(path) = &config_path {
        let file = Source::File(PathBuf::from(path));
        for (k, v) in read_config_file(path)? {
            merged.insert(k, (v, file.clone()));
        }
    }
    for (layer, source) in [(overrides, Source::Override), (env, Source::Env)] {
        for (k, v) in layer {
            if !v.trim().is_empty() {
                merged.insert(k.clone(), (v.clone(), source.clone()));
            }
        }
    }
    Ok((config_path, merged))
}

/// `KSC_ID_TOKEN_SOURCE`, `KSC_ID_TOKEN_FILE`, `KSC_OIDC_AUDIENCE` and GitHub's ambient
/// variables: each checked, and a chosen source that lacks its inputs refused here, before any
/// request.
fn resolve_identity(
    c: &mut Config,
    get: &dyn Fn(&str) -> Option<String>,
    env: &Settings,
) -> Result<()> {
    if let Some(v) = get(KSC_ID_TOKEN_SOURCE) {
        c.id_token_source = match v.to_ascii_lowercase().as_str() {
            "auto" => IdentitySource::Auto,
            "token" => IdentitySource::Token,
            "file" => IdentitySource::File,
            "client" => IdentitySource::Client,
            "github" => IdentitySource::Github,
            _ => {
                return Err(Error::config(
                    KSC_ID_TOKEN_SOURCE,
                    format!(
                        "{v:?} is not an identity source (auto, token, file, client or github)"
                    ),
                ))
            }
        };
    }
    c.id_token_file = get(KSC_ID_TOKEN_FILE).map(PathBuf::from);
    if let Some(a) = get(KSC_OIDC_AUDIENCE) {
        if a.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return Err(Error::config(
                KSC_OIDC_AUDIENCE,
                format!("{a:?} contains whitespace; give the one audience KeyServer expects"),
            ));
        }
        c.oidc_audience = Some(a);
    }
    let ambient = |k: &str| {
        env.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let (url, token) = (
        ambient(ACTIONS_ID_TOKEN_REQUEST_URL),
        ambient(ACTIONS_ID_TOKEN_REQUEST_TOKEN),
    );
    // GitHub comes last in the auto order (token::Identity::of): any other identity wins.
    let others = c.id_token.is_some() || c.id_token_file.is_some() || c.has_client_credentials();
    let github_wanted = match c.id_token_source {
        IdentitySource::Github => true,
        IdentitySource::Auto => !others,
        _ => false,
    };
    match (url, token) {
        (Some(url), Some(token)) => {
            if github_wanted {
                check_request_url(&url)?;
                if token
                    .chars()
                    .any(|ch| ch.is_whitespace() || ch.is_control())
                {
                    return Err(Error::config(
                        ACTIONS_ID_TOKEN_REQUEST_TOKEN,
                        "contains whitespace; it must be the runner's value as given",
                    ));
                }
            }
            c.github_oidc = Some(GithubOidc {
                request_url: url,
                request_token: token,
            });
        }
        (url, _) if c.id_token_source == IdentitySource::Github => {
            let missing = if url.is_none() {
                ACTIONS_ID_TOKEN_REQUEST_URL
            } else {
                ACTIONS_ID_TOKEN_REQUEST_TOKEN
            };
            return Err(Error::config(
                KSC_ID_TOKEN_SOURCE,
                format!("github needs {missing}, which GitHub Actions sets only in a job with `permissions: id-token: write`"),
            ));
        }
        _ => {}
    }
    let missing = match c.id_token_source {
        IdentitySource::Token if c.id_token.is_none() => Some(KSC_ID_TOKEN),
        IdentitySource::File if c.id_token_file.is_none() => Some(KSC_ID_TOKEN_FILE),
        IdentitySource::Client
            if c.auth_server.is_none() || c.client_id.is_none() || c.client_secret.is_none() =>
        {
            Some("KSC_AUTH_SERVER, KSC_CLIENT_ID and KSC_CLIENT_SECRET")
        }
        _ => None,
    };
    if let Some(m) = missing {
        return Err(Error::config(
            KSC_ID_TOKEN_SOURCE,
            format!("{} is chosen but {m} is not set", c.id_token_source.name()),
        ));
    }
    Ok(())
}

/// GitHub's request URL: like [`check_url`] (https, or http to this machine only, since the
/// request token is a secret) but with its query, which carries the API version.
fn check_request_url(value: &str) -> Result<()> {
    let var = ACTIONS_ID_TOKEN_REQUEST_URL;
    let url =
        reqwest::Url::parse(value).map_err(|e| Error::config(var, format!("is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => return Err(Error::config(var, "has no host")),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(Error::config(
            var,
            "must be an https:// URL (http only to localhost)",
        )),
    }
}

/// Checks a base URL: http(s) scheme, a host, no query or fragment; returns it without a
/// trailing `/`.
/// `key1=sha256:HEX[,key2=sha256:HEX...]` (commas or whitespace between entries; the hex may be
/// written with colons, as `openssl x509 -fingerprint -sha256` prints it).
fn parse_pins(value: &str) -> std::result::Result<Vec<(String, [u8; 32])>, String> {
    let mut pins = Vec::new();
    for item in value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let (key, pin) = item
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("{item:?} is not KEYID=sha256:HEX"))?;
        let hex_part = pin
            .strip_prefix("sha256:")
            .or_else(|| pin.strip_prefix("SHA256:"))
            .ok_or_else(|| format!("the pin of {key} must start with sha256:"))?;
        let hex_digits: String = hex_part.chars().filter(|&c| c != ':').collect();
        let bytes = hex::decode(&hex_digits)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| format!("the pin of {key} is not 64 hex digits (a SHA-256)"))?;
        pins.push((key.to_string(), bytes));
    }
    if pins.is_empty() {
        return Err("no pin given (KEYID=sha256:HEX)".into());
    }
    Ok(pins)
}

/// An on/off setting: `true/false`, `on/off`, `yes/no`, `1/0` (any case).
fn parse_switch(var: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(Error::config(
            var,
            format!("{value:?} is not a switch (use on or off)"),
        )),
    }
}

fn check_url(var: &str, value: &str) -> Result<String> {
    let url = reqwest::Url::parse(value)
        .map_err(|e| Error::config(var, format!("{value:?} is not a URL: {e}")))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(Error::config(
            var,
            format!("{value:?} must start with https://"),
        ));
    }
    let Some(host) = url.host() else {
        return Err(Error::config(var, format!("{value:?} has no host")));
    };
    // Plain http would send the bearer token in clear; it is allowed only to this machine
    // (a local proxy or test fake), never across a network.
    let loopback = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
    };
    if url.scheme() == "http" && !loopback {
        return Err(Error::config(
            var,
            format!("{value:?} uses plain http; use https:// (http is only allowed to localhost)"),
        ));
    }
    // Every request path starts with /api/ already: a base URL ending in /api would ask for
    // /api/api/keys and get a baffling 404.
    if var == KSC_API_SERVER && url.path().trim_end_matches('/').ends_with("/api") {
        return Err(Error::config(
            var,
            format!(
                "{value:?} ends in /api; give the server's base URL without it ({})",
                value.trim_end_matches('/').trim_end_matches("/api")
            ),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(
            var,
            format!("{value:?} must not have a query or fragment"),
        ));
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// Reads a config file (JSON or KEY=VALUE lines) into settings.
pub fn read_config_file(path: &str) -> Result<Settings> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(KSC_CONFIG, format!("cannot read {path}: {e}")))?;
    parse_config_text(&text).map_err(|e| Error::config(KSC_CONFIG, format!("{path}: {e}")))
}

/// Parses config file text.
pub fn parse_config_text(text: &str) -> std::result::Result<Settings, String> {
    let mut out = Settings::new();
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let obj = v.as_object().ok_or("the JSON must be an object")?;
        for (k, v) in obj {
            let name = canonical_key(k).ok_or_else(|| format!("unknown key {k:?}"))?;
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                _ => return Err(format!("key {k:?} must be a string")),
            };
            out.insert(name.to_string(), value);
        }
        return Ok(out);
    }
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected KEY=VALUE", i + 1))?;
        let k = k.trim();
        let name = canonical_key(k).ok_or_else(|| format!("line {}: unknown key {k:?}", i + 1))?;
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            &v[1..v.len() - 1]
        } else {
            v
        };
        out.insert(name.to_string(), v.to_string());
    }
    Ok(out)
}

fn canonical_key(k: &str) -> Option<&'static str> {
    if let Some(v) = ALL_VARIABLES.iter().find(|v| **v == k) {
        // KSC_CONFIG inside a config file would be circular; ignore it by treating it as known.
        return Some(v);
    }
    LEGACY_KEYS.iter().find(|(l, _)| *l == k).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn s(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn deadline_setting() {
        let c = Config::resolve(&s(&[]), &s(&[])).unwrap();
        assert_eq!(c.deadline, DEFAULT_DEADLINE);
        let c = Config::resolve(&s(&[]), &s(&[(KSC_DEADLINE, "1m30s")])).unwrap();
        assert_eq!(c.deadline, Duration::from_secs(90));
        for bad in ["0s", "soon", "-5s"] {
            let e = Config::resolve(&s(&[]), &s(&[(KSC_DEADLINE, bad)])).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains(KSC_DEADLINE), "{e}");
        }
    }

    #[test]
    fn signing_trust_settings() {
        let h = "ab".repeat(32);
        let colons = vec!["CD"; 32].join(":");
        let pins = format!(
            "key1=sha256:{h}, key2=SHA256:{colons}\nkey1=sha256:{}",
            "00".repeat(32)
        );
        let c = Config::resolve(
            &s(&[]),
            &s(&[
                (KSC_SIGNING_CA_FILE, "/etc/ks/ca.pem"),
                (KSC_KEY_PINS, &pins),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.signing_ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ks/ca.pem"))
        );
        assert_eq!(
            c.key_pins,
            vec![
                ("key1".to_string(), [0xab; 32]),
                ("key2".to_string(), [0xcd; 32]),
                ("key1".to_string(), [0; 32])
            ]
        );
        for bad in [
            "key1",
            "=sha256:00",
            "key1=md5:00",
            "key1=sha256:abcd",
            "key1=sha256:zz",
            " , ",
        ] {
            let e = Config::resolve(&s(&[]), &s(&[(KSC_KEY_PINS, bad)])).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(e.to_string().contains(KSC_KEY_PINS), "{e}");
        }
    }

    #[test]
    fn defaults() {
        let c = Config::resolve(&Settings::new(), &Settings::new()).unwrap();
        assert_eq!(c.http_timeout, Duration::from_secs(10));
        assert_eq!(c.approval_timeout, Duration::ZERO);
        assert_eq!(c.operation_description, DEFAULT_DESCRIPTION);
        assert!(c.api_server.is_none());
        assert_eq!(
            c.require_api_server().unwrap_err().kind(),
            ErrorKind::Config
        );
        assert!(c
            .require_operation_id()
            .unwrap_err()
            .to_string()
            .contains("KSC_OPERATION_ID"));
    }

    #[test]
    fn precedence_file_overrides_env() {
        let dir = std::env::temp_dir().join(format!("ksc-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.json");
        std::fs::write(
            &file,
            r#"{"api-server": "https://file:8200/", "op-id": "file-op", "op-desc": "from file",
                "username": "u", "password": "p", "auth-server": "https://auth:8300",
                "KSC_HTTP_CLIENT_TIMEOUT": "20s"}"#,
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let env = s(&[(KSC_CONFIG, path)]);
        let c = Config::resolve(&Settings::new(), &env).unwrap();
        assert_eq!(c.api_server.as_deref(), Some("https://file:8200"));
        assert_eq!(c.operation_id.as_deref(), Some("file-op"));
        assert_eq!(c.operation_description, "from file");
        assert_eq!(c.client_id.as_deref(), Some("u"));
        assert!(c.has_client_credentials());
        assert_eq!(c.http_timeout, Duration::from_secs(20));

        let ov = s(&[
            (KSC_OPERATION_ID, "ov-op"),
            (KSC_HTTP_CLIENT_TIMEOUT, "1m30s"),
        ]);
        let c = Config::resolve(&ov, &env).unwrap();
        assert_eq!(c.operation_id.as_deref(), Some("ov-op"));
        assert_eq!(c.http_timeout, Duration::from_secs(90));

        let env2 = s(&[
            (KSC_CONFIG, path),
            (KSC_OPERATION_ID, "env-op"),
            (KSC_HTTP_CLIENT_TIMEOUT, ""),
        ]);
        let c = Config::resolve(&ov, &env2).unwrap();
        assert_eq!(
            c.operation_id.as_deref(),
            Some("env-op"),
            "env beats overrides"
        );
        assert_eq!(
            c.http_timeout,
            Duration::from_secs(90),
            "empty env value is unset"
        );

        // The config file may also come from the overrides (provider parameter).
        let c = Config::resolve(&s(&[(KSC_CONFIG, path)]), &Settings::new()).unwrap();
        assert_eq!(c.operation_id.as_deref(), Some("file-op"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn env_file_format() {
        let st = parse_config_text(
            "# comment\nexport KSC_API_SERVER=\"https://x:1\"\nKSC_APPROVAL_TIMEOUT = 5m\n\nop-id='7'\n",
        )
        .unwrap();
        assert_eq!(st[KSC_API_SERVER], "https://x:1");
        assert_eq!(st[KSC_APPROVAL_TIMEOUT], "5m");
        assert_eq!(st[KSC_OPERATION_ID], "7");
        assert!(parse_config_text("NOPE=1").is_err());
        assert!(parse_config_text("just words").is_err());
        assert!(parse_config_text("{\"api-server\": [1]}").is_err());
        assert!(parse_config_text("{\"bogus\": \"1\"}").is_err());
        assert!(parse_config_text("{not json").is_err());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            (KSC_HTTP_CLIENT_TIMEOUT, "ten seconds"),
            (KSC_HTTP_CLIENT_TIMEOUT, "0s"),
            (KSC_APPROVAL_TIMEOUT, "-1s"),
            (KSC_API_SERVER, "keyserver:8200"),
            (KSC_API_SERVER, "ftp://x"),
            (KSC_API_SERVER, "http://keyserver.example:8200"),
            (KSC_AUTH_SERVER, "https://a/?q=1"),
            (KSC_ID_TOKEN, "abc def"),
            (KSC_OPERATION_ID, "null"),
            (KSC_LOG, "loud"),
            (KSC_CONFIG, "/nonexistent/ksc.conf"),
            (KSC_SYSTEM_ROOTS, "maybe"),
            (KSC_SYSTEM_ROOTS, "false"),
            (KSC_CACHE, "sometimes"),
            (KSC_CACHE, "relative/dir"),
        ];
        for (k, v) in cases {
            let e = Config::resolve(&Settings::new(), &s(&[(k, v)])).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{k}={v}");
            assert!(e.to_string().contains(k), "{k}={v}: {e}");
        }
        for ok in [
            "http://127.0.0.1:8200",
            "http://localhost:1/",
            "https://ks.example:8200/base/",
        ] {
            Config::resolve(&Settings::new(), &s(&[(KSC_API_SERVER, ok)])).unwrap();
        }
        let e = Config::resolve(&s(&[("KSC_BOGUS", "1")]), &Settings::new()).unwrap_err();
        assert!(e.to_string().contains("KSC_BOGUS"));
        let e = Config::resolve(&Settings::new(), &s(&[(KSC_CLIENT_ID, "x")])).unwrap_err();
        assert!(e.to_string().contains(KSC_CLIENT_SECRET));
    }

    #[test]
    fn switches() {
        let c = Config::resolve(&Settings::new(), &Settings::new()).unwrap();
        assert!(c.system_roots && c.cache, "both on by default");
        let c = Config::resolve(
            &Settings::new(),
            &s(&[
                (KSC_SYSTEM_ROOTS, "False"),
                (KSC_CA_FILE, "/ca.pem"),
                (KSC_CACHE, "off"),
            ]),
        )
        .unwrap();
        assert!(!c.system_roots && !c.cache);
        let c = Config::resolve(&Settings::new(), &s(&[(KSC_CACHE, "ON")])).unwrap();
        assert!(c.cache && c.cache_dir.is_none());
        let c = Config::resolve(&Settings::new(), &s(&[(KSC_CACHE, "/var/tmp/ks")])).unwrap();
        assert!(c.cache);
        assert_eq!(
            c.cache_dir.as_deref(),
            Some(std::path::Path::new("/var/tmp/ks"))
        );
    }

    #[test]
    fn effective_settings_name_their_source() {
        let dir = tempfile_dir("eff");
        let file = dir.join("ksc.conf");
        std::fs::write(
            &file,
            "KSC_API_SERVER=https://file:8200\nKSC_DEADLINE=30s\nKSC_CLIENT_SECRET=s3cret\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let ov = s(&[(KSC_DEADLINE, "40s"), (KSC_OPERATION_ID, "ov")]);
        let env = s(&[
            (KSC_CONFIG, path),
            (KSC_OPERATION_ID, "env"),
            (KSC_LOG, " "),
        ]);
        let eff = Config::effective_settings(&ov, &env).unwrap();
        let get = |n: &str| eff.iter().find(|e| e.name == n).unwrap().clone();
        assert_eq!(eff.len(), ALL_VARIABLES.len() + AMBIENT_VARIABLES.len());
        assert_eq!(get(KSC_API_SERVER).source, Source::File(file.clone()));
        assert_eq!(get(KSC_DEADLINE).value.as_deref(), Some("40s"));
        assert_eq!(get(KSC_DEADLINE).source, Source::Override);
        assert_eq!(get(KSC_OPERATION_ID).value.as_deref(), Some("env"));
        assert_eq!(get(KSC_OPERATION_ID).source, Source::Env);
        assert_eq!(get(KSC_CONFIG).source, Source::Env);
        // Empty counts as unset: the default shows.
        assert_eq!(get(KSC_LOG).source, Source::Default);
        assert_eq!(get(KSC_LOG).value.as_deref(), Some("warn"));
        assert_eq!(get(KSC_HTTP_CLIENT_TIMEOUT).value.as_deref(), Some("10s"));
        assert_eq!(get(KSC_CA_FILE).value, None);
        // The same layers resolve to the same winners.
        let c = Config::resolve(&ov, &env).unwrap_err();
        assert!(c.to_string().contains(KSC_CLIENT_ID), "{c}");
        assert!(!format!("{eff:?}").contains("s3cret"));
        assert!(is_secret(KSC_CLIENT_SECRET) && is_secret(KSC_ID_TOKEN));
        assert!(is_secret("KSC_SOME_NEW_TOKEN") && !is_secret(KSC_CA_FILE));
        let e = Config::effective_settings(&ov, &s(&[(KSC_CONFIG, "/nonexistent/k.conf")]));
        assert_eq!(e.unwrap_err().kind(), ErrorKind::Config);
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tempfile_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ksc-cfg-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Config::resolve(
            &Settings::new(),
            &s(&[
                (KSC_ID_TOKEN, "eyJsecret.token.x"),
                (KSC_CLIENT_ID, "me"),
                (KSC_CLIENT_SECRET, "hunter2"),
            ]),
        )
        .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("eyJsecret") && !d.contains("hunter2"), "{d}");
        assert!(d.contains("<hidden>"));
    }
}
