//! The per-user cache (issue 14, item 3) when its disk fails, with the real
//! programs: `openssl dgst -provider keyserver` and `pkcs11-tool` run with a
//! file-size limit of 256 bytes (`prlimit --fsize`, SIGXFSZ ignored), so every
//! cache write stops part-way with EFBIG, as on a full disk. The signature is
//! still made and verifies, no temporary file or truncated entry is left, an
//! older entry is left intact, and the next normal run fills the cache and the
//! one after it needs a single request. Entries truncated by hand (a crash of
//! another writer, a copied home directory) are ignored and replaced.
//!
//! Unparsable catalogs and too-open token files through the library are
//! covered by common/tests/cache.rs; this file adds the failing disk and
//! truncated (prefix) entries of both kinds through the real programs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ks_e2e::pkcs11_support::{module_path, pkcs11_tool};
use ks_e2e::provider_support::{openssl, run_ok, ProviderEnv};

/// RLIMIT_FSIZE of the limited runs, in bytes (`prlimit` from util-linux
/// counts bytes; the shell's `ulimit -f` only 512-byte blocks, more than a
/// token entry). Every entry is larger (checked below), so the first write()
/// succeeds in part and the next one fails.
const FSIZE: u64 = 256;

struct Setup {
    env: ProviderEnv,
    cache: PathBuf,
    /// key1's CKA_ID as pkcs11-tool lists it.
    id: String,
    /// key1's public key from the server's certificate file.
    public: PathBuf,
    data: PathBuf,
}

impl Setup {
    fn start() -> Setup {
        let env = ProviderEnv::start(20);
        let cache = env.path("cache");
        let data = env.write("data", b"signed while the cache cannot be written\n");
        let cert = env.server.data_dir().join("keys/key1.cert.pem");
        let public = env.public_key_of_cert(&cert, "key1");
        let mut s = Setup {
            env,
            cache,
            id: String::new(),
            public,
            data,
        };
        // Listing the objects needs the catalog: it also proves the cache works
        // at all before it is made to fail (removed again below).
        let out = run_ok(
            s.command(pkcs11_tool())
                .arg("--module")
                .arg(module_path())
                .arg("-O"),
        );
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut label = None;
        for line in listing.lines().map(str::trim) {
            if let Some(l) = line.strip_prefix("label:") {
                label = Some(l.trim().to_string());
            } else if let Some(id) = line.strip_prefix("ID:") {
                if label.take().as_deref() == Some("key1") {
                    s.id = id.trim().to_string();
                }
            }
        }
        assert!(!s.id.is_empty(), "no key1 in the listing:\n{listing}");
        assert_eq!(entries(&s.cache, "catalog").len(), 1, "the cache works");
        std::fs::remove_dir_all(&s.cache).expect("empty the cache");
        s
    }

    /// `program` with client credentials (so tokens are cached too) and
    /// `KSC_CACHE` pointing at our directory.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = self.env.command(program);
        cmd.env_remove("KSC_ID_TOKEN")
            .env("KSC_AUTH_SERVER", self.env.server.auth_url())
            .env("KSC_CLIENT_ID", "orderer-client")
            .env("KSC_CLIENT_SECRET", "orderer-client-secret")
            .env("KSC_CACHE", &self.cache);
        cmd
    }

    /// `program args` under a [`FSIZE`]-byte file-size limit with SIGXFSZ
    /// ignored (inherited across exec), logging at debug level to stderr.
    fn limited(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = self.command("sh");
        cmd.arg("-c")
            .arg("trap '' XFSZ && exec prlimit --fsize=\"$0\" -- \"$@\"")
            .arg(FSIZE.to_string())
            .arg(program)
            .args(args)
            .env("KSC_LOG", "debug");
        cmd
    }

    fn openssl_args(&self) -> Vec<String> {
        [
            "dgst",
            "-provider",
            "keyserver",
            "-sha256",
            "-sign",
            "ks:key1",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([self.data.display().to_string()])
        .collect()
    }

    fn pkcs11_args(&self) -> Vec<String> {
        vec![
            "--module".into(),
            module_path().display().to_string(),
            "--sign".into(),
            "--id".into(),
            self.id.clone(),
            "--mechanism".into(),
            "SHA256-RSA-PKCS".into(),
            "--input-file".into(),
            self.data.display().to_string(),
        ]
    }

    /// Runs `cmd` (the signature goes to stdout, a pipe, which the file-size
    /// limit does not cover), checks the signature, returns the output.
    fn sign(&self, mut cmd: Command, what: &str) -> Output {
        let out = cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let sig = self.env.write(&format!("{what}.sig"), &out.stdout);
        let verified = run_ok(
            Command::new(openssl())
                .args(["dgst", "-sha256", "-verify"])
                .arg(&self.public)
                .arg("-signature")
                .arg(&sig)
                .arg(&self.data),
        );
        assert!(
            String::from_utf8_lossy(&verified.stdout).contains("Verified OK"),
            "{what}: the signature does not verify"
        );
        out
    }

    fn openssl_limited(&self) -> Output {
        let args = self.openssl_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.sign(self.limited(&openssl(), &args), "openssl-limited")
    }

    fn pkcs11_limited(&self) -> Output {
        let args = self.pkcs11_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.sign(self.limited(&pkcs11_tool(), &args), "pkcs11-tool-limited")
    }

    fn openssl_normal(&self) -> Output {
        let mut cmd = self.command(openssl());
        cmd.args(self.openssl_args());
        self.sign(cmd, "openssl")
    }

    fn pkcs11_normal(&self) -> Output {
        let mut cmd = self.command(pkcs11_tool());
        cmd.args(self.pkcs11_args());
        self.sign(cmd, "pkcs11-tool")
    }

    /// Requests the server handled while `f` ran (the second stats request is
    /// counted by the server before it answers, hence the 1).
    fn requests_during<T>(&self, f: impl FnOnce() -> T) -> (u64, T) {
        let count = || {
            self.env.server.stats()["requests"]
                .as_u64()
                .expect("requests")
        };
        let before = count();
        let out = f();
        (count() - before - 1, out)
    }
}

/// The cache entries of `kind` (`catalog`, `token`).
fn entries(cache: &Path, kind: &str) -> Vec<PathBuf> {
    files(cache)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(&format!(".{kind}.json")))
        .collect()
}

fn files(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .map(|d| d.map(|e| e.expect("read the cache").path()).collect())
        .unwrap_or_default()
}

/// How many cache writes the run's debug log says failed with EFBIG.
fn failed_writes(out: &Output) -> usize {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("not written") && l.contains("File too large"))
        .count()
}

fn the_entry(cache: &Path, kind: &str) -> PathBuf {
    match &entries(cache, kind)[..] {
        [one] => one.clone(),
        other => panic!("expected one {kind} entry, found {other:?}"),
    }
}

/// Each entry is a whole JSON document in a private file, and nothing else is there.
fn assert_whole_entries(cache: &Path) {
    for f in files(cache) {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        assert!(!name.ends_with(".tmp"), "temporary file left: {name}");
        let bytes = std::fs::read(&f).expect("read an entry");
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .unwrap_or_else(|e| panic!("{name} is not a whole entry ({e})"));
        let mode = std::fs::metadata(&f).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
}

#[test]
fn a_full_disk_never_breaks_a_signature_nor_leaves_a_partial_entry() {
    let s = Setup::start();

    // Empty cache, every write fails part-way: both programs sign, and the
    // cache holds nothing at all (the directory itself needs no file space).
    let out = s.openssl_limited();
    assert_eq!(failed_writes(&out), 2, "token and catalog writes failed");
    let out = s.pkcs11_limited();
    assert_eq!(failed_writes(&out), 2, "token and catalog writes failed");
    assert_eq!(
        files(&s.cache),
        Vec::<PathBuf>::new(),
        "nothing left behind"
    );

    // The next normal run fetches and caches both; the one after it needs
    // only the sign order.
    let (n, _) = s.requests_during(|| s.openssl_normal());
    assert_eq!(n, 3, "token, key list and sign order");
    let catalog = s.the_entry_checked("catalog");
    let token = s.the_entry_checked("token");
    let (n, _) = s.requests_during(|| s.pkcs11_normal());
    assert_eq!(n, 1, "token and catalog from the cache");

    // A stale catalog must be refreshed, and the refresh cannot be written:
    // the old entry stays as it was (not truncated, not half-replaced).
    let mut entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&catalog).expect("read")).expect("entry");
    entry["fetched"] = 0.0.into();
    let stale = serde_json::to_vec(&entry).expect("json");
    std::fs::write(&catalog, &stale).expect("age the catalog");
    let token_before = std::fs::read(&token).expect("read");
    let (n, out) = s.requests_during(|| s.openssl_limited());
    assert_eq!(n, 2, "key list and sign order (token from the cache)");
    assert_eq!(failed_writes(&out), 1, "the catalog write failed");
    assert_eq!(
        std::fs::read(&catalog).expect("read"),
        stale,
        "old entry intact"
    );
    assert_eq!(std::fs::read(&token).expect("read"), token_before);
    assert_whole_entries(&s.cache);
    assert_eq!(files(&s.cache).len(), 2);

    // With room again, the stale entry is replaced by a fresh one.
    let (n, _) = s.requests_during(|| s.pkcs11_normal());
    assert_eq!(n, 2, "key list and sign order");
    let fresh: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&catalog).expect("read")).expect("entry");
    assert!(
        fresh["fetched"].as_f64().is_some_and(|t| t > 0.0),
        "catalog refreshed: {}",
        fresh["fetched"]
    );
    let (n, _) = s.requests_during(|| s.openssl_normal());
    assert_eq!(n, 1);
}

#[test]
fn truncated_entries_are_ignored_and_replaced() {
    let s = Setup::start();
    s.openssl_normal();
    let catalog = s.the_entry_checked("catalog");
    let token = s.the_entry_checked("token");

    // Cut both entries in half (a writer without the rename dance, a full
    // disk during a copy): neither is used, both are fetched and rewritten.
    for entry in [&catalog, &token] {
        let bytes = std::fs::read(entry).expect("read");
        std::fs::write(entry, &bytes[..bytes.len() / 2]).expect("truncate");
    }
    let (n, _) = s.requests_during(|| s.pkcs11_normal());
    assert_eq!(n, 3, "token, key list and sign order");
    assert_whole_entries(&s.cache);

    // Empty entries (created, never written) likewise.
    for entry in [&catalog, &token] {
        std::fs::write(entry, b"").expect("empty");
    }
    let (n, _) = s.requests_during(|| s.openssl_normal());
    assert_eq!(n, 3, "token, key list and sign order");
    assert_whole_entries(&s.cache);
    let (n, _) = s.requests_during(|| s.pkcs11_normal());
    assert_eq!(n, 1, "the replaced entries are used");
}

impl Setup {
    /// The one entry of `kind`, whole, private, and larger than the file-size
    /// limit of the limited runs (so their writes really stopped part-way).
    fn the_entry_checked(&self, kind: &str) -> PathBuf {
        assert_whole_entries(&self.cache);
        let entry = the_entry(&self.cache, kind);
        let len = std::fs::metadata(&entry).expect("stat").len();
        assert!(len > FSIZE, "{kind} entry of {len} bytes fits in the limit");
        entry
    }
}
