//! Support for the provider end-to-end suites (`tests/provider_*.rs`): the
//! built `keyserver.so` in a modules directory, a dev KeyServer with an
//! approved operation for every dev key, and running the real `openssl`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use ks_devserver::harness::{DevServer, DevServerBuilder};

/// Every dev key with its OpenSSL key type and group/size.
pub const DEV_KEYS: [(&str, &str); 6] = [
    ("key1", "RSA-2048"),
    ("key2", "EC-P256"),
    ("key3", "RSA-3072"),
    ("key4", "EC-P384"),
    ("key5", "EC-P521"),
    ("key6", "RSA-4096"),
];

/// The built provider, `target/<profile>/libkeyserver.so`, found relative to
/// the test executable (`target/<profile>/deps/<test>`).
pub fn provider_library() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let lib = profile_dir.join("libkeyserver.so");
    assert!(
        lib.is_file(),
        "{} is missing: run `cargo build -p ks-provider` first",
        lib.display()
    );
    lib
}

/// The path of an installed program; a missing one fails the test naming the
/// Debian/Ubuntu package that provides it.
pub fn tool(name: &str, apt_package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: install it with `apt-get install {apt_package}`")
        })
}

/// An OpenSSL installation to test against instead of the system's (the
/// 3.5/4.0 matrix): `KS_OPENSSL_PREFIX`, as printed by
/// `provider/scripts/build-openssl.sh`.
pub fn openssl_prefix() -> Option<PathBuf> {
    std::env::var_os("KS_OPENSSL_PREFIX")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// `openssl`: `$KS_OPENSSL_PREFIX/bin/openssl`, else the system's (package openssl).
pub fn openssl() -> PathBuf {
    match openssl_prefix() {
        Some(prefix) => {
            let bin = prefix.join("bin/openssl");
            assert!(
                bin.is_file(),
                "KS_OPENSSL_PREFIX={} has no bin/openssl; build it with provider/scripts/build-openssl.sh",
                prefix.display()
            );
            bin
        }
        None => tool("openssl", "openssl"),
    }
}

/// Compiler arguments that build a small libcrypto program against the
/// OpenSSL under test (`KS_OPENSSL_PREFIX`'s static libcrypto, else the
/// system's libssl-dev).
pub fn libcrypto_cc_args() -> Vec<String> {
    match openssl_prefix() {
        Some(prefix) => vec![
            format!("-I{}", prefix.join("include").display()),
            prefix.join("lib/libcrypto.a").display().to_string(),
            "-lpthread".into(),
            "-ldl".into(),
        ],
        None => vec!["-lcrypto".into()],
    }
}

/// The repository's `conf/openssl-ks.cnf`.
pub fn repo_openssl_cnf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../conf/openssl-ks.cnf")
        .canonicalize()
        .expect("conf/openssl-ks.cnf exists in the repository")
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd`; fails the test with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(cmd)));
    assert!(
        out.status.success(),
        "{} failed ({}):\nstdout: {}\nstderr: {}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd`, expecting failure; returns its stderr.
pub fn run_fail(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(cmd)));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{} succeeded but should have failed:\nstdout: {}\nstderr: {stderr}",
        describe(cmd),
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The line of OpenSSL's error output that the keyserver provider wrote.
pub fn keyserver_error_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains(":keyserver:"))
        .unwrap_or_else(|| panic!("no keyserver error on OpenSSL's error stack:\n{stderr}"))
        .to_string()
}

/// A dev KeyServer, an approved operation for every dev key, and a scratch
/// directory holding `modules/keyserver.so`.
pub struct ProviderEnv {
    /// The running server (dropped last: kills it and removes its data).
    pub server: DevServer,
    /// The approved operation.
    pub operation: String,
    /// Client environment (KSC_API_SERVER, KSC_CA_FILE, KSC_ID_TOKEN,
    /// KSC_OPERATION_ID, KSC_OPERATION_DESCRIPTION).
    pub env: Vec<(String, String)>,
    /// Scratch directory (inside the server's data directory).
    pub dir: PathBuf,
    /// The directory holding `keyserver.so` (for `OPENSSL_MODULES`).
    pub modules: PathBuf,
}

impl ProviderEnv {
    /// Starts a server with an approved operation allowing `uses` signatures
    /// with every dev key.
    pub fn start(uses: u32) -> ProviderEnv {
        ProviderEnv::start_with(DevServer::builder(), uses)
    }

    /// Like [`ProviderEnv::start`] with a configured server.
    pub fn start_with(builder: DevServerBuilder, uses: u32) -> ProviderEnv {
        let lib = provider_library();
        let server = builder.start();
        let keys: Vec<(&str, u32)> = DEV_KEYS.iter().map(|(k, _)| (*k, uses)).collect();
        let operation = server.create_operation("orderer-client", &keys, 600_000);
        // key2 and key4 need one approval, key3 two: adminclient approves for
        // every key, approver-key3 adds key3's second.
        server.approve("adminclient", &operation);
        server.approve("approver-key3", &operation);
        let status = server.operation(&operation);
        assert_eq!(
            status.get("status").and_then(|s| s.as_str()),
            Some("approved"),
            "operation {operation} is not approved: {status}"
        );
        let token = server.token("orderer-client");
        let mut env = server.client_env(&token, &operation);
        env.push((
            "KSC_OPERATION_DESCRIPTION".into(),
            "provider end-to-end test".into(),
        ));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = server
            .data_dir()
            .join(format!("provider-e2e-{}-{nanos}", std::process::id()));
        let modules = dir.join("modules");
        std::fs::create_dir_all(&modules).expect("create the scratch directory");
        // OpenSSL loads `-provider keyserver` as keyserver.so (no lib prefix).
        std::os::unix::fs::symlink(&lib, modules.join("keyserver.so"))
            .expect("link keyserver.so to the built library");
        ProviderEnv {
            server,
            operation,
            env,
            dir,
            modules,
        }
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes a file in the scratch directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// `program` in the scratch directory with the client environment,
    /// `OPENSSL_MODULES` pointing at `keyserver.so`, and no `OPENSSL_CONF`
    /// (so only the providers a command names are loaded).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.dir)
            .env_remove("OPENSSL_CONF")
            .env_remove("KSC_CONFIG")
            .env_remove("KSC_LOG")
            .env("OPENSSL_MODULES", &self.modules);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `openssl <args>` (see [`ProviderEnv::command`]).
    pub fn openssl(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(openssl());
        cmd.args(args);
        cmd
    }

    /// Runs `openssl <args>`, which must succeed.
    pub fn openssl_ok(&self, args: &[&str]) -> Output {
        run_ok(&mut self.openssl(args))
    }

    /// The key's certificate (PEM) via `storeutl -certs`, saved as `<keyid>.crt`.
    pub fn certificate(&self, keyid: &str) -> PathBuf {
        let out = self.path(&format!("{keyid}.crt"));
        let out_s = out.to_string_lossy().into_owned();
        let uri = format!("ks:{keyid}");
        self.openssl_ok(&[
            "storeutl",
            "-provider",
            "keyserver",
            "-provider",
            "default",
            "-certs",
            "-out",
            &out_s,
            &uri,
        ]);
        let pem = std::fs::read_to_string(&out).expect("storeutl wrote the certificate");
        assert!(
            pem.contains("BEGIN CERTIFICATE"),
            "no certificate for {keyid}: {pem}"
        );
        out
    }

    /// The key's public key (PEM) via `pkey -pubout`, saved as `<keyid>.pub`.
    pub fn public_key(&self, keyid: &str) -> PathBuf {
        let out = self.path(&format!("{keyid}.pub"));
        let out_s = out.to_string_lossy().into_owned();
        let uri = format!("ks:{keyid}");
        self.openssl_ok(&[
            "pkey",
            "-provider",
            "keyserver",
            "-provider",
            "default",
            "-in",
            &uri,
            "-pubout",
            "-out",
            &out_s,
        ]);
        out
    }

    /// The public key taken out of a certificate file, saved as `<name>.certpub`.
    pub fn public_key_of_cert(&self, cert: &Path, name: &str) -> PathBuf {
        let out = self.path(&format!("{name}.certpub"));
        let (c, o) = (cert.to_string_lossy(), out.to_string_lossy());
        self.openssl_ok(&["x509", "-in", &c, "-pubkey", "-noout", "-out", &o]);
        out
    }

    /// Sign orders the server has seen so far.
    pub fn signorders(&self) -> u64 {
        self.server.stats()["signorders"].as_u64().unwrap_or(0)
    }
}

/// Splits a DER certificate (or CSR) into (to-be-signed bytes, signature
/// bytes) so a signature made by `ks:` keys can be checked with `openssl dgst`.
pub fn split_signed_der(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn header(b: &[u8]) -> (usize, usize) {
        assert!(b.len() >= 2, "truncated DER");
        let l = b[1] as usize;
        if l < 0x80 {
            return (2, l);
        }
        let n = l & 0x7f;
        let len = b[2..2 + n]
            .iter()
            .fold(0usize, |acc, x| (acc << 8) | *x as usize);
        (2 + n, len)
    }
    let (h, _) = header(der);
    let body = &der[h..];
    let (th, tl) = header(body);
    let tbs = body[..th + tl].to_vec();
    let rest = &body[th + tl..];
    let (ah, al) = header(rest);
    let rest = &rest[ah + al..];
    let (bh, bl) = header(rest);
    assert_eq!(rest[0], 0x03, "signature is a BIT STRING");
    // Skip the BIT STRING's unused-bits byte.
    (tbs, rest[bh + 1..bh + bl].to_vec())
}
