//! Support for the PKCS#11 end-to-end suites (`tests/pkcs11_*.rs`): locating
//! libpkcs11ks.so and the external tools, a dev KeyServer with an approved
//! operation for every dev key, and running programs with the client
//! environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use ks_devserver::harness::{DevServer, DevServerBuilder};

use crate::tutorial_support::{artefact, clean_command};

/// The dev keys and their algorithms (see the dev server's defaults).
pub const DEV_KEYS: [(&str, KeyKind); 6] = [
    ("key1", KeyKind::Rsa(2048)),
    ("key2", KeyKind::Ec("prime256v1")),
    ("key3", KeyKind::Rsa(3072)),
    ("key4", KeyKind::Ec("secp384r1")),
    ("key5", KeyKind::Ec("secp521r1")),
    ("key6", KeyKind::Rsa(4096)),
];

/// The algorithm family of a dev key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with this many modulus bits.
    Rsa(usize),
    /// EC on this curve (OpenSSL group name).
    Ec(&'static str),
}

/// The built module: `target/<profile>/libpkcs11ks.so`, found relative to the
/// test executable (`target/<profile>/deps/<test>`).
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let module = profile_dir.join("libpkcs11ks.so");
    assert!(
        module.is_file(),
        "{} is missing: run `cargo build -p ks-pkcs11` first",
        module.display()
    );
    module
}

/// A PKCS#11 application starting under the client settings `env` (a CI
/// identity, say): creates an operation with `ksc operation create --key
/// <key_uses>` (e.g. `key1=2`) under `env` with its log off, exports `env`
/// and `KSC_OPERATION_ID` into this process's environment (the module reads
/// its configuration from there), then loads libpkcs11ks.so and initialises
/// it. Returns the operation id and the module. The environment is the
/// process's: call it from a test binary with this one test, so that nothing
/// else reads the environment meanwhile.
pub fn module_for_new_operation(env: &[(&str, String)], key_uses: &str) -> (String, Pkcs11) {
    let out = clean_command(artefact("ksc"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("KSC_LOG", "off")
        .args(["operation", "create", "--key", key_uses])
        .output()
        .expect("ksc operation create");
    assert!(
        out.status.success(),
        "ksc operation create --key {key_uses}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let op = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!op.is_empty(), "ksc operation create printed no id");
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    std::env::set_var("KSC_OPERATION_ID", &op);
    let pkcs11 = Pkcs11::new(module_path()).expect("load the module");
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    (op, pkcs11)
}

/// The path of an installed program; a missing one fails the test naming the
/// Debian/Ubuntu package that provides it.
pub fn tool(name: &str, apt_package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not installed: install it with `apt-get install {apt_package}`");
}

/// `pkcs11-tool` (package opensc).
pub fn pkcs11_tool() -> PathBuf {
    tool("pkcs11-tool", "opensc")
}

/// `openssl` (package openssl).
pub fn openssl() -> PathBuf {
    tool("openssl", "openssl")
}

/// libp11's OpenSSL engine (package libengine-pkcs11-openssl).
pub fn libp11_engine() -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/engines-3/libpkcs11.so",
        "/usr/lib/aarch64-linux-gnu/engines-3/libpkcs11.so",
        "/usr/lib64/engines-3/libpkcs11.so",
        "/usr/lib/engines-3/libpkcs11.so",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("libp11's engine libpkcs11.so is not installed: install it with `apt-get install libengine-pkcs11-openssl`")
        })
}

/// Runs a command and returns its output, failing the test (with both
/// streams) when it does not exit successfully.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A dev KeyServer with one operation covering every dev key (`uses` each),
/// created by `orderer-client` and fully approved, plus a scratch directory.
pub struct Pkcs11Env {
    /// The running dev server (killed on drop).
    pub server: DevServer,
    /// The operation id.
    pub operation: String,
    /// Client environment (KSC_API_SERVER, KSC_CA_FILE, KSC_ID_TOKEN,
    /// KSC_OPERATION_ID, KSC_OPERATION_DESCRIPTION).
    pub env: Vec<(String, String)>,
    /// Scratch directory inside the server's data directory.
    pub dir: PathBuf,
    /// libpkcs11ks.so.
    pub module: PathBuf,
}

impl Pkcs11Env {
    /// Starts a server and an approved operation allowing `uses` signatures
    /// with every dev key.
    pub fn start(uses: u32) -> Pkcs11Env {
        Pkcs11Env::start_with(DevServer::builder(), uses)
    }

    /// Like [`Pkcs11Env::start`] with a configured server (fault knobs).
    pub fn start_with(builder: DevServerBuilder, uses: u32) -> Pkcs11Env {
        let server = builder.start();
        let keys: Vec<(&str, u32)> = DEV_KEYS.iter().map(|(k, _)| (*k, uses)).collect();
        let operation = server.create_operation("orderer-client", &keys, 600_000);
        // key2 and key4 need one approval, key3 two: adminclient approves for
        // every key, approver-key3 adds key3's second approval.
        server.approve("adminclient", &operation);
        server.approve("approver-key3", &operation);
        let status = server.operation(&operation);
        let approved = status.get("status").and_then(|s| s.as_str()) == Some("approved")
            || status
                .get("approved")
                .is_some_and(|a| a.as_str() == Some("true") || a.as_bool() == Some(true));
        assert!(approved, "operation {operation} is not approved: {status}");
        Pkcs11Env::with_operation(server, operation)
    }

    /// The environment for an operation on an already configured server (the
    /// caller created and, where needed, approved it as `orderer-client`).
    pub fn with_operation(server: DevServer, operation: String) -> Pkcs11Env {
        let module = module_path();
        let token = server.token("orderer-client");
        let mut env = server.client_env(&token, &operation);
        env.push((
            "KSC_OPERATION_DESCRIPTION".into(),
            "PKCS#11 end-to-end test".into(),
        ));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = server
            .data_dir()
            .join(format!("pkcs11-e2e-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Pkcs11Env {
            server,
            operation,
            env,
            dir,
            module,
        }
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A command with the client environment (and no inherited KSC_*).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("KSC_") || k == "OPENSSL_CONF" {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.current_dir(&self.dir);
        cmd
    }

    /// `pkcs11-tool --module libpkcs11ks.so <args>`, which must succeed.
    pub fn pkcs11_tool(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(pkcs11_tool());
        cmd.arg("--module").arg(&self.module).args(args);
        run_ok(&mut cmd)
    }

    /// The hex `CKA_ID` of every key, by label, as `pkcs11-tool -O` lists them
    /// (pkcs11-tool selects keys for `--sign` by `--id` only).
    pub fn key_ids(&self) -> std::collections::BTreeMap<String, String> {
        let out = self.pkcs11_tool(&["-O"]);
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut ids = std::collections::BTreeMap::new();
        let mut label = None;
        for line in listing.lines() {
            let line = line.trim();
            if let Some(l) = line.strip_prefix("label:") {
                label = Some(l.trim().to_string());
            } else if let Some(id) = line.strip_prefix("ID:") {
                if let Some(l) = label.take() {
                    ids.insert(l, id.trim().to_string());
                }
            }
        }
        ids
    }

    /// Reads a key's certificate through the module (`--read-object --type
    /// cert --label <keyid>`), returning the DER.
    pub fn read_certificate(&self, keyid: &str) -> Vec<u8> {
        let file = self.path(&format!("{keyid}.der"));
        let file_arg = file.to_string_lossy().into_owned();
        self.pkcs11_tool(&[
            "--read-object",
            "--type",
            "cert",
            "--label",
            keyid,
            "--output-file",
            &file_arg,
        ]);
        std::fs::read(&file).expect("the certificate written by pkcs11-tool")
    }

    /// The key's public key as PEM (from the certificate read through the module).
    pub fn public_key_pem(&self, keyid: &str) -> PathBuf {
        self.read_certificate(keyid);
        let pem = self.path(&format!("{keyid}.pub.pem"));
        run_ok(
            self.command(openssl())
                .args(["x509", "-pubkey", "-noout", "-inform", "DER", "-in"])
                .arg(self.path(&format!("{keyid}.der")))
                .arg("-out")
                .arg(&pem),
        );
        pem
    }
}
