//! `ksc`: the KeyServer pipeline steps from the command line (token, keys, certificates,
//! operations, approval, signing and verification) without curl or jq.
//!
//! Results go to stdout (plain, or JSON with `--json`); messages and progress go to stderr.
//! Exit codes are documented in `ksc --help` and stable for scripts.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

use ks_common::config::{ALL_VARIABLES, AMBIENT_VARIABLES, KSC_API_SERVER, KSC_CONFIG};
use ks_common::duration::{format_duration, parse_duration};
use ks_common::error::{Error, ErrorKind};
use ks_common::hash::HashAlg;
use ks_common::keys::{KeyEntry, PublicKey};
use ks_common::operation::{OperationSpec, OperationState, OperationStatus};
use ks_common::sign::{EcdsaFormat, SignRequest};
use ks_common::{Client, Config, Settings};

mod batch;

/// `println!` that ends quietly when stdout is closed (`ksc keys | head -1`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

// After the macro: doctor prints with `outln!`.
mod doctor;

const EXIT_CODES: &str = "\
Exit codes:
   0  success
   1  other error (bad server reply, unsupported, internal)
   2  usage error (bad command line)
   3  configuration error (missing or invalid KSC_* setting)
   4  authentication or permission error (token refused, role not allowed)
   5  network error (server unreachable, timeout, rate limited, server failure)
   6  key or operation not found
   7  invalid input (digest length, key type, padding)
  10  operation pending approval
  11  operation rejected
  12  operation expired
  13  operation exhausted (every permitted use spent)
  20  signature verification failed

Environment: KSC_API_SERVER, KSC_ID_TOKEN, KSC_ID_TOKEN_FILE or KSC_AUTH_SERVER + KSC_CLIENT_ID +
KSC_CLIENT_SECRET (in GitHub Actions: KSC_OIDC_AUDIENCE; choose with KSC_ID_TOKEN_SOURCE),
KSC_OPERATION_ID, KSC_OPERATION_DESCRIPTION, KSC_CA_FILE, KSC_HTTP_CLIENT_TIMEOUT,
KSC_APPROVAL_TIMEOUT, KSC_APPROVAL_URL, KSC_LOG, KSC_LOG_FORMAT, KSC_CONFIG.
Precedence: command-line flags > environment > config file > defaults.";

const MAIN_EXAMPLES: &str = "\
Examples (the tutorial's pipeline):
  export KSC_API_SERVER=https://keyserver.example:8200 KSC_AUTH_SERVER=https://authserver.example:8300
  export KSC_CLIENT_ID=orderer-client KSC_CLIENT_SECRET=...
  export KSC_ID_TOKEN=$(ksc token)
  eval \"$(ksc operation create --key key1=1 --key key4=1 --valid 60s \\
             --description 'Building of firmware for XYZ development board' --export)\"
  ksc operation wait --timeout 10m
  ksc sign --key key1 --in firmware.bin --out firmware.sig
  ksc verify --key key1 --in firmware.bin --sig firmware.sig";

/// KeyServer remote signing from the command line.
#[derive(Parser, Debug)]
#[command(name = "ksc", version, about, after_help = format!("{MAIN_EXAMPLES}\n\n{EXIT_CODES}"))]
struct Cli {
    /// Print results as JSON on stdout (errors too).
    #[arg(long, global = true)]
    json: bool,
    /// API server URL (wins over KSC_API_SERVER and the config file).
    #[arg(long, global = true, value_name = "URL")]
    api_server: Option<String>,
    /// Config file (wins over KSC_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a bearer token (KSC_ID_TOKEN, the token file's, GitHub's, or one by client credentials).
    #[command(after_help = "Example:\n  export KSC_ID_TOKEN=$(ksc token)")]
    Token,
    /// List the keys: id, algorithm, size or curve, approvers, certificate subject and expiry.
    #[command(after_help = "Examples:\n  ksc keys\n  ksc keys --json | jq -r '.[].keyid'")]
    Keys,
    /// Write a key's certificate (PEM by default).
    #[command(
        after_help = "Examples:\n  ksc cert key1 -o key1.pem\n  ksc cert key1 --der -o key1.der\n  ksc cert key1 --pubkey -o key1.pub.pem"
    )]
    Cert {
        /// Key id.
        key: String,
        /// DER instead of PEM.
        #[arg(long, conflicts_with_all = ["pem", "pubkey"])]
        der: bool,
        /// PEM (the default).
        #[arg(long)]
        pem: bool,
        /// The public key (PEM SubjectPublicKeyInfo) instead of the certificate.
        #[arg(long)]
        pubkey: bool,
        /// Output file (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
    },

    /// Create an operation, show its status, wait for it, approve or reject it.
    #[command(subcommand)]
    Operation(OperationCmd),
    /// Hash a file locally and sign the digest with a KeyServer key.
    #[command(
        after_help = "Examples:\n  ksc sign --key key1 --in fw.bin --out fw.sig                 # RSA PKCS#1 v1.5, SHA-256\n  ksc sign --key key1 --in build/ --out-dir sigs --jobs 8 --manifest sigs/manifest.json\n  find out -name '*.bin' | ksc sign --key key1 --in-list - --out-dir sigs --suffix .p7\n  ksc sign --key key3 --in fw.bin --out fw.sig --hash sha384 --pss\n  ksc sign --key key2 --in fw.bin --out fw.sig                 # ECDSA, DER signature\n\nVerify with openssl:\n  ksc cert key1 --pubkey -o key1.pub\n  openssl dgst -sha256 -verify key1.pub -signature fw.sig fw.bin\n  (PSS: add -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1)"
    )]
    Sign {
        #[command(flatten)]
        args: SignArgs,
        #[command(flatten)]
        batch: batch::BatchArgs,
    },
    /// Print a shell completion script for ksc (install it as your shell expects).
    #[command(
        after_help = "Examples:\n  ksc completions bash > /usr/share/bash-completion/completions/ksc\n  ksc completions zsh > \"${fpath[1]}/_ksc\""
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Check the set-up: every setting and its source, then the checks (spends nothing).
    ///
    /// The checks, in order: configuration, DNS, TCP, TLS, authentication, the key catalog and
    /// the operation (KSC_OPERATION_ID), each ok/FAIL/skip with what it found and the fix.
    #[command(
        after_help = "Exit codes: 0 every check passed, 1 a check failed, 2 usage error.\n\nExamples:\n  ksc doctor\n  ksc doctor --json | jq '.checks[] | select(.status == \"fail\")'"
    )]
    Doctor,
    /// Print ksc's man page (roff) on stdout.
    #[command(after_help = "Example:\n  ksc man > /usr/share/man/man1/ksc.1 && man ksc")]
    Man,
    /// Verify a signature of a file locally with the key's certificate.
    #[command(after_help = "Example:\n  ksc verify --key key1 --in fw.bin --sig fw.sig")]
    Verify {
        #[command(flatten)]
        args: SignArgs,
        /// Signature file.
        #[arg(long, value_name = "FILE")]
        sig: PathBuf,
    },
}

#[derive(Args, Debug)]
struct SignArgs {
    /// Key id.
    #[arg(long)]
    key: String,
    /// Input file to hash (`-` for stdin); sign: repeatable, or a directory (its files).
    #[arg(long = "in", value_name = "FILE")]
    input: Vec<PathBuf>,
    /// Signature output file (sign only; `-` for stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Hash algorithm.
    #[arg(long, default_value = "sha256", value_parser = parse_hash)]
    hash: HashAlg,
    /// RSA-PSS instead of PKCS#1 v1.5 (MGF1 with the same hash).
    #[arg(long)]
    pss: bool,
    /// PSS salt length in bytes (default: the hash length).
    #[arg(long, requires = "pss")]
    salt_len: Option<usize>,
    /// ECDSA signature encoding.
    #[arg(long, value_enum, default_value_t = SigFormat::Der)]
    format: SigFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SigFormat {
    /// DER ECDSA-Sig-Value (what openssl writes and reads).
    Der,
    /// r||s (PKCS#11 CKM_ECDSA).
    P1363,
}

fn parse_hash(s: &str) -> Result<HashAlg, String> {
    HashAlg::from_name(s).ok_or_else(|| {
        format!("unknown hash {s:?} (sha256, sha384, sha512; sha1 only with KSC_ALLOW_SHA1=1)")
    })
}

fn parse_key_use(s: &str) -> Result<(String, u32), String> {
    let (k, n) = s.split_once('=').unwrap_or((s, "1"));
    if k.is_empty() {
        return Err("expected KEY=COUNT, e.g. key1=1".into());
    }
    let n: u32 = n
        .parse()
        .map_err(|_| format!("{n:?} is not a count (expected KEY=COUNT, e.g. key1=1)"))?;
    if n == 0 {
        return Err("the count must be at least 1".into());
    }
    Ok((k.to_string(), n))
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

#[derive(Subcommand, Debug)]
enum OperationCmd {
    /// Create an operation and print its id.
    #[command(
        after_help = "Examples:\n  ksc operation create --key key1=1 --key key4=1 --valid 60s --description 'Firmware XYZ'\n  eval \"$(ksc operation create --key key3=2 --valid 10m --description 'Release 1.2' --export)\"\n  ksc operation create --key key2=1 --valid 5m --description 'Nightly' --wait --timeout 4m"
    )]
    Create {
        /// Key and number of uses, repeatable: --key key1=1 --key key4=2.
        #[arg(long = "key", required = true, value_parser = parse_key_use, value_name = "KEY=COUNT")]
        keys: Vec<(String, u32)>,
        /// Validity of the whole sequence (approval and signing), Go syntax: 60s, 10m, 1h.
        #[arg(long, default_value = "60s", value_parser = parse_dur)]
        valid: Duration,
        /// Shown to approvers (default: KSC_OPERATION_DESCRIPTION).
        #[arg(long)]
        description: Option<String>,
        /// Wait for approval after creating.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits (default: the validity).
        #[arg(long, value_parser = parse_dur, requires = "wait")]
        timeout: Option<Duration>,
        #[command(flatten)]
        talk: WaitTalk,
        /// Print `export KSC_OPERATION_ID=...` for eval.
        #[arg(long)]
        export: bool,
    },
    /// List the operations this identity may see (default: the pending ones).
    #[command(
        after_help = "Examples:\n  ksc operation list              # pending\n  ksc operation list --mine --all  # every operation this identity created\n  ksc operation list --json | jq -r '.[].id'"
    )]
    List {
        /// Only pending operations (the default).
        #[arg(long, conflicts_with = "all")]
        pending: bool,
        /// Operations in every state.
        #[arg(long)]
        all: bool,
        /// Only operations created by this identity.
        #[arg(long)]
        mine: bool,
    },
    /// Show an operation's status.
    #[command(
        after_help = "Examples:\n  ksc operation status 42\n  ksc operation status --json   # KSC_OPERATION_ID"
    )]
    Status {
        /// Operation id (default: KSC_OPERATION_ID).
        id: Option<String>,
    },
    /// Wait until an operation is approved (progress on stderr).
    #[command(
        after_help = "Examples:\n  ksc operation wait 42 --timeout 10m\n  ksc operation wait            # KSC_OPERATION_ID, up to KSC_APPROVAL_TIMEOUT or 10m"
    )]
    Wait {
        /// Operation id (default: KSC_OPERATION_ID).
        id: Option<String>,
        /// Give up after this long (default: KSC_APPROVAL_TIMEOUT if set, else 10m).
        #[arg(long, value_parser = parse_dur)]
        timeout: Option<Duration>,
        #[command(flatten)]
        talk: WaitTalk,
    },
    /// Approve an operation (as an approver identity; dev server extension API).
    #[command(
        after_help = "Example:\n  KSC_CLIENT_ID=approver-key3 KSC_CLIENT_SECRET=... ksc operation approve 42"
    )]
    Approve {
        /// Operation id (default: KSC_OPERATION_ID).
        id: Option<String>,
    },
    /// Reject an operation (final; dev server extension API).
    #[command(after_help = "Example:\n  ksc operation reject 42")]
    Reject {
        /// Operation id (default: KSC_OPERATION_ID).
        id: Option<String>,
    },
}

/// How a wait reports while it waits.
#[derive(Args, Debug, Clone, Copy)]
struct WaitTalk {
    /// Without a terminal, print a status line at least this often (per key approvals, who
    /// approved, time left).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_heartbeat)]
    heartbeat: Duration,
    /// Print nothing while waiting (no progress, no heartbeat, no approval link).
    #[arg(long)]
    quiet: bool,
}

fn parse_heartbeat(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("the heartbeat must be greater than 0 (use --quiet for no lines)".into());
    }
    Ok(d)
}

fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Config => 3,
        ErrorKind::Auth | ErrorKind::Forbidden => 4,
        ErrorKind::Network | ErrorKind::RateLimited => 5,
        ErrorKind::NotFound => 6,
        ErrorKind::InvalidInput => 7,
        ErrorKind::Pending => 10,
        ErrorKind::Rejected => 11,
        ErrorKind::Expired => 12,
        ErrorKind::Exhausted => 13,
        ErrorKind::VerificationFailed => 20,
        ErrorKind::BadResponse | ErrorKind::Unsupported | ErrorKind::Internal => 1,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_out = cli.json;
    if let Command::Doctor = cli.command {
        let (settings, flags) = cli_settings(&cli);
        return doctor::run(&settings, &flags, json_out);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ksc: {e}");
            if json_out {
                let v = json!({
                    "error": e.kind().name(),
                    "message": e.to_string(),
                    "keyid": e.keyid(),
                    "operation": e.operation(),
                });
                outln!("{v}");
            }
            ExitCode::from(exit_code(e.kind()))
        }
    }
}

/// The settings every command resolves, and which variables a flag set (by which flag).
///
/// Command-line flags > environment > config file > defaults: the flags replace the
/// environment's value before the library applies its own order (file < environment).
fn cli_settings(cli: &Cli) -> (Settings, Vec<(&'static str, &'static str)>) {
    let mut settings: Settings = ALL_VARIABLES
        .iter()
        .chain(AMBIENT_VARIABLES.iter())
        .filter_map(|v| std::env::var(v).ok().map(|val| (v.to_string(), val)))
        .collect();
    let mut flags = Vec::new();
    if let Some(a) = &cli.api_server {
        settings.insert(KSC_API_SERVER.into(), a.clone());
        flags.push((KSC_API_SERVER, "--api-server"));
    }
    if let Some(c) = &cli.config {
        settings.insert(KSC_CONFIG.into(), c.display().to_string());
        flags.push((KSC_CONFIG, "--config"));
    }
    (settings, flags)
}

fn run(cli: Cli) -> Result<(), Error> {
    // Generated from the clap definition; they need no configuration.
    match &cli.command {
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "ksc", &mut buf);
            return write_output(None, &buf);
        }
        Command::Man => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut buf)
                .map_err(|e| Error::internal(format!("man page: {e}")))?;
            return write_output(None, &buf);
        }
        _ => {}
    }
    let (settings, _) = cli_settings(&cli);
    let config = Config::resolve(&Settings::new(), &settings)?;
    ks_common::logging::init(&config);
    if let Some(notice) = ks_common::token::identity_notice(&config) {
        eprintln!("ksc: {notice}");
    }
    // The digest policy's per-process opt-in, as `signer::connect` sets it for the libraries.
    ks_common::digest_policy::set_allow_sha1(ks_common::digest_policy::allow_sha1_from_env()?);
    let client = Client::new(config);
    let json_out = cli.json;
    match cli.command {
        Command::Token => {
            let t = client.token()?;
            if json_out {
                outln!("{}", json!({ "access_token": t }));
            } else {
                outln!("{t}");
            }
        }
        Command::Keys => keys(&client, json_out)?,
        Command::Cert {
            key,
            der,
            pem: _,
            pubkey,
            out,
        } => {
            let k = client.key(&key)?;
            if json_out {
                // JSON carries text only: the PEM inside, whatever the other flags say.
                let mut v = json!({
                    "keyid": k.keyid,
                    "certificate_pem": k.certificate_pem(),
                    "public_key_pem": k.public_key_pem(),
                    "subject": k.subject_string(),
                    "not_after": unix(k.not_after),
                });
                if der {
                    v["certificate_der_base64"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(&k.certificate_der));
                }
                let text = format!("{v}\n");
                write_output(out.as_deref(), text.as_bytes())?;
                return Ok(());
            }
            let bytes = if der {
                k.certificate_der.clone()
            } else if pubkey {
                k.public_key_pem().into_bytes()
            } else {
                k.certificate_pem().into_bytes()
            };
            write_output(out.as_deref(), &bytes)?;
        }
        Command::Operation(op) => operation(&client, op, json_out)?,
        Command::Sign { args, batch } => batch::sign(&client, &args, &batch, json_out)?,
        Command::Completions { .. } | Command::Man | Command::Doctor => {}
        Command::Verify { args, sig } => {
            let entry = client.key(&args.key)?;
            let request = build_request(&entry, &args)?;
            let sig = read_input(&sig)?;
            ks_common::verify::verify(&entry.public_key, &request, &sig)
                .map_err(|e| e.with_key(&args.key))?;
            if json_out {
                outln!("{}", json!({"keyid": args.key, "verified": true}));
            } else {
                outln!("Verified OK");
            }
        }
    }
    Ok(())
}

const MAX_INPUT: u64 = 1 << 40;

fn read_input(path: &Path) -> Result<Vec<u8>, Error> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| Error::invalid_input(format!("cannot read stdin: {e}")))?;
        return Ok(buf);
    }
    ks_common::http::read_file_bounded(path, MAX_INPUT)
        .map_err(|e| Error::invalid_input(format!("cannot read {}: {e}", path.display())))
}

/// Prints one JSON value on stdout.
fn print_json(v: &Value) {
    outln!("{v}");
}

/// Hashes verify's one input and builds the request.
fn build_request(entry: &KeyEntry, args: &SignArgs) -> Result<SignRequest, Error> {
    let input = match args.input.as_slice() {
        [one] => one,
        _ => return Err(Error::invalid_input("verify takes exactly one --in FILE")),
    };
    let (digest, _) = batch::hash_file(input, args.hash)?;
    request_for(entry, args, digest)
}

/// The request for `digest` (made with `args.hash`) under the key's type and the padding flags.
fn request_for(entry: &KeyEntry, args: &SignArgs, digest: Vec<u8>) -> Result<SignRequest, Error> {
    Ok(match &entry.public_key {
        PublicKey::Rsa { .. } if args.pss => SignRequest::RsaPss {
            hash: args.hash,
            salt_len: args.salt_len.unwrap_or(args.hash.output_len()),
            digest,
        },
        PublicKey::Rsa { .. } => SignRequest::RsaPkcs1 {
            hash: args.hash,
            digest,
        },
        PublicKey::Ec { .. } => {
            if args.pss {
                return Err(Error::invalid_input("--pss needs an RSA key").with_key(&entry.keyid));
            }
            SignRequest::Ecdsa {
                digest,
                format: match args.format {
                    SigFormat::Der => EcdsaFormat::Der,
                    SigFormat::P1363 => EcdsaFormat::P1363,
                },
            }
        }
    })
}

fn write_output(out: Option<&Path>, bytes: &[u8]) -> Result<(), Error> {
    let io_err =
        |e: std::io::Error, what: &str| Error::invalid_input(format!("cannot write {what}: {e}"));
    match out {
        None => std::io::stdout()
            .write_all(bytes)
            .map_err(|e| io_err(e, "stdout")),
        Some(p) if p == Path::new("-") => std::io::stdout()
            .write_all(bytes)
            .map_err(|e| io_err(e, "stdout")),
        Some(p) => std::fs::write(p, bytes).map_err(|e| io_err(e, &p.display().to_string())),
    }
}

fn keys(client: &Client, json_out: bool) -> Result<(), Error> {
    let keys = client.keys()?;
    // Listed by the server but refused by KSC_SIGNING_CA_FILE / KSC_KEY_PINS: shown apart, with
    // the reason, so a wrong CA file or a substituted key is visible rather than a missing key.
    let untrusted = client.untrusted_keys()?;
    if json_out {
        let list: Vec<Value> = keys
            .iter()
            .map(|k| (k, None))
            .chain(untrusted.iter().map(|u| (&u.entry, Some(u.reason.as_str()))))
            .map(|(k, refused)| {
                json!({
                    "keyid": k.keyid,
                    "keyinfo": k.keyinfo,
                    "type": k.public_key.type_name(),
                    "algorithm": k.algorithm.clone().unwrap_or_else(|| k.public_key.algorithm_name()),
                    "bits": k.public_key.bits(),
                    "curve": match &k.public_key { PublicKey::Ec { curve, .. } => Some(curve.name()), _ => None },
                    "approvers": k.approvers,
                    "subject": k.subject_string(),
                    "not_after": unix(k.not_after),
                    "trusted": refused.is_none(),
                    "untrusted_reason": refused,
                })
            })
            .collect();
        outln!("{}", Value::Array(list));
        return Ok(());
    }
    let rows: Vec<[String; 5]> = keys
        .iter()
        .map(|k| {
            let size = match &k.public_key {
                PublicKey::Rsa { .. } => format!("{} bits", k.public_key.bits()),
                PublicKey::Ec { curve, .. } => curve.name().to_string(),
            };
            [
                k.keyid.clone(),
                k.algorithm
                    .clone()
                    .unwrap_or_else(|| k.public_key.algorithm_name()),
                size,
                k.approvers
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "?".into()),
                format!("{}  (expires {})", k.subject_string(), date(k.not_after)),
            ]
        })
        .collect();
    let header = ["KEYID", "ALGORITHM", "SIZE", "APPROVERS", "SUBJECT"];
    let mut width = header.map(|h| h.len());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string()
    };
    outln!("{}", line(header));
    for r in &rows {
        outln!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    if !untrusted.is_empty() {
        outln!();
        outln!("NOT TRUSTED (listed by the server, never used):");
        for u in untrusted.iter() {
            outln!("{}  {}", u.entry.keyid, u.reason);
        }
    }
    Ok(())
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD` (UTC) for the key table (1970-01-01 for times before it).
fn date(t: std::time::SystemTime) -> String {
    let (y, m, d) = ks_common::date::ymd(t).unwrap_or((1970, 1, 1));
    format!("{y:04}-{m:02}-{d:02}")
}

fn op_id(client: &Client, id: Option<String>) -> Result<String, Error> {
    match id {
        Some(i) => Ok(i),
        None => Ok(client.config().require_operation_id()?.to_string()),
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The JSON form of a status: the server's reply with `approved` a boolean (the Known API
/// sends the string "true") and `status` always present.
fn status_json(st: &OperationStatus) -> Value {
    let mut v = st.raw.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(st.id));
        o.insert("approved".into(), json!(st.approved));
        o.insert("status".into(), json!(st.state.name()));
    }
    v
}

fn print_status(st: &OperationStatus, json_out: bool) {
    if json_out {
        outln!("{}", status_json(st));
        return;
    }
    outln!("operation {}: {}", st.id, st.state);
    if let Some(d) = &st.description {
        outln!("  description: {d}");
    }
    if let Some(c) = &st.created_by {
        outln!("  created by:  {c}");
    }
    match st.expires_in() {
        // An ended validity is said as such, never as "expires in 0ms".
        Some(left) if left.is_zero() || st.state == OperationState::Expired => {
            outln!("  expired:     the validity has ended")
        }
        Some(left) if !st.state.is_final() => outln!("  expires in:  {}", format_duration(left)),
        _ => {}
    }
    for k in &st.keys {
        let uses = match (k.usage_count, k.max_usage) {
            (Some(u), Some(m)) => format!("{u} of {m} uses"),
            (None, Some(m)) => format!("{m} uses"),
            _ => String::new(),
        };
        let appr = k
            .approvals_text()
            .map(|a| format!(", {a}"))
            .unwrap_or_default();
        outln!("  {}: {uses}{appr}", k.keyid);
    }
    if !st.rejected_by.is_empty() {
        outln!("  rejected by: {}", st.rejected_by.join(", "));
    }
}

/// The approvers' page: `KSC_APPROVAL_URL`, else the dev KeyServer's `/ui/` when the status
/// carries its extension fields (a real KeyServer's keyclient URL cannot be guessed).
fn approval_link(client: &Client, st: &OperationStatus) -> Option<String> {
    if let Some(u) = &client.config().approval_url {
        return Some(u.clone());
    }
    let dev =
        st.raw.get("status").is_some() && st.keys.iter().any(|k| k.required_approvals.is_some());
    let api = client.config().api_server.as_deref()?;
    dev.then(|| format!("{api}/ui/"))
}

/// The heartbeat line: every key's approvals and approvers, and both times left.
fn heartbeat_line(st: &OperationStatus, give_up_in: Duration) -> String {
    let keys: Vec<String> = st
        .keys
        .iter()
        .map(|k| match k.approvals_text() {
            Some(a) => format!("{} {a}", k.keyid),
            None => k.keyid.clone(),
        })
        .collect();
    let mut s = format!("ksc: operation {} still {}", st.id, st.state);
    if !keys.is_empty() {
        s.push_str(&format!(": {}", keys.join("; ")));
    }
    if let Some(left) = st.expires_in() {
        s.push_str(&format!("; expires in {}", format_duration(left)));
    }
    s.push_str(&format!("; giving up in {}", format_duration(give_up_in)));
    s
}

/// Progress while waiting: a rewritten line on a terminal; otherwise a line per real change
/// and a heartbeat line at least every `talk.heartbeat`, so a CI log shows the wait is alive.
fn progress_printer<'a>(
    client: &'a Client,
    talk: WaitTalk,
    timeout: Duration,
) -> impl FnMut(&OperationStatus) + 'a {
    let tty = std::io::stderr().is_terminal();
    let mut last = String::new();
    let mut last_line = std::time::Instant::now();
    let started = std::time::Instant::now();
    let mut linked = false;
    move |st: &OperationStatus| {
        if talk.quiet {
            return;
        }
        if !linked {
            linked = true;
            if let Some(link) = approval_link(client, st) {
                eprintln!("ksc: approvers can approve operation {} at {link}", st.id);
            }
        }
        let s = st.summary();
        if tty {
            eprint!("\r\x1b[2K{s}");
            let _ = std::io::stderr().flush();
            return;
        }
        // Compare without the countdown so a plain log gets one line per real change.
        let key = s.split(", expires in").next().unwrap_or(&s).to_string();
        if key != last {
            eprintln!("{s}");
            last = key;
            last_line = std::time::Instant::now();
        } else if last_line.elapsed() >= talk.heartbeat {
            eprintln!(
                "{}",
                heartbeat_line(st, timeout.saturating_sub(started.elapsed()))
            );
            last_line = std::time::Instant::now();
        }
    }
}

fn wait(
    client: &Client,
    id: &str,
    timeout: Duration,
    talk: WaitTalk,
) -> Result<OperationStatus, Error> {
    let mut p = progress_printer(client, talk, timeout);
    let r = client.wait_for_approval(id, timeout, &mut p);
    if std::io::stderr().is_terminal() && !talk.quiet {
        eprintln!();
    }
    r
}

fn operation(client: &Client, cmd: OperationCmd, json_out: bool) -> Result<(), Error> {
    match cmd {
        OperationCmd::Create {
            keys,
            valid,
            description,
            wait: do_wait,
            timeout,
            talk,
            export,
        } => {
            let spec = OperationSpec {
                valid,
                description: description
                    .unwrap_or_else(|| client.config().operation_description.clone()),
                keys,
            };
            let id = client.create_operation(&spec)?;
            if do_wait {
                wait(client, &id, timeout.unwrap_or(valid), talk)?;
            }
            if export {
                outln!("export KSC_OPERATION_ID={}", shell_quote(&id));
            } else if json_out {
                outln!("{}", json!({ "id": id }));
            } else {
                outln!("{id}");
            }
        }
        OperationCmd::List {
            pending: _,
            all,
            mine,
        } => list(client, all, mine, json_out)?,
        OperationCmd::Status { id } => {
            let id = op_id(client, id)?;
            print_status(&client.operation(&id)?, json_out);
        }
        OperationCmd::Wait { id, timeout, talk } => {
            let id = op_id(client, id)?;
            let cfg = client.config().approval_timeout;
            let timeout = timeout.unwrap_or(if cfg.is_zero() {
                Duration::from_secs(600)
            } else {
                cfg
            });
            let st = wait(client, &id, timeout, talk)?;
            if json_out {
                outln!("{}", status_json(&st));
            } else {
                outln!("operation {id}: approved");
            }
        }
        OperationCmd::Approve { id } => {
            let id = op_id(client, id)?;
            print_status(&client.approve(&id)?, json_out);
        }
        OperationCmd::Reject { id } => {
            let id = op_id(client, id)?;
            print_status(&client.reject(&id)?, json_out);
        }
    }
    Ok(())
}

/// Who this client is, as operations record it (`createdby`): the token's `sub`, its
/// `client_id`, or `iss#sub` for external (CI) tokens. Read without verification: it only
/// filters a list the server already decided this identity may see.
fn identities(token: &str) -> Vec<String> {
    let claims = jwt_claims(token).unwrap_or(Value::Null);
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(String::from);
    let mut ids: Vec<String> = [s("sub"), s("client_id"), s("azp")]
        .into_iter()
        .flatten()
        .collect();
    if let (Some(iss), Some(sub)) = (s("iss"), s("sub")) {
        ids.push(format!("{iss}#{sub}"));
    }
    ids
}

/// A JWT's claims as a JSON object, read without verification; `None` when `token` is not a
/// JWT.
fn jwt_claims(token: &str) -> Option<Value> {
    ks_common::token::jwt_claims(token).map(Value::Object)
}

/// `ksc operation list`.
fn list(client: &Client, all: bool, mine: bool, json_out: bool) -> Result<(), Error> {
    let filter = if all { "all" } else { "pending" };
    let mut ops = client.operations(filter)?;
    if mine {
        let me = identities(&client.token()?);
        ops.retain(|st| st.created_by.as_ref().is_some_and(|c| me.contains(c)));
    }
    if json_out {
        outln!("{}", Value::Array(ops.iter().map(status_json).collect()));
        return Ok(());
    }
    if ops.is_empty() {
        eprintln!(
            "ksc: no {}operations{}",
            if all { "" } else { "pending " },
            if mine {
                " created by this identity"
            } else {
                ""
            }
        );
        return Ok(());
    }
    outln!("ID\tSTATUS\tCREATED BY\tEXPIRES IN\tKEYS\tDESCRIPTION");
    for st in &ops {
        let left = match st.expires_in() {
            Some(l) if !l.is_zero() && !st.state.is_final() => format_duration(l),
            _ => "-".into(),
        };
        let keys: Vec<String> = st
            .keys
            .iter()
            .map(|k| match k.max_usage {
                Some(m) => format!("{}={m}", k.keyid),
                None => k.keyid.clone(),
            })
            .collect();
        outln!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            st.id,
            st.state,
            st.created_by.as_deref().unwrap_or("-"),
            left,
            keys.join(","),
            st.description.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
