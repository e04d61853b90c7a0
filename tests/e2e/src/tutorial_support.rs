//! Support for the tutorial, conf/, install and Dockerfile suites
//! (`tests/tutorial_*.rs`, `conf_*.rs`, `install_*.rs`, `dockerfile_*.rs`):
//! the repository and build paths, the real tools, and openssl verification.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// A file of the repository, by its path relative to the root.
pub fn repo_file(relative: &str) -> PathBuf {
    let p = repo_root().join(relative);
    assert!(
        p.is_file(),
        "{} is missing from the repository",
        p.display()
    );
    p
}

/// The Cargo profile directory holding this test's build
/// (`target/<profile>`, the parent of `deps/` where the test executable lives).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// `(target dir, profile name)` of this test's build, as the scripts'
/// `--target-dir` and `--profile` options take them.
pub fn target_and_profile() -> (PathBuf, String) {
    let dir = profile_dir();
    let profile = dir
        .file_name()
        .and_then(OsStr::to_str)
        .expect("a profile directory name")
        .to_string();
    let target = dir.parent().expect("the target directory").to_path_buf();
    (target, profile)
}

/// A built artefact of this build (`ksc`, `ks-devserver`, `libkeyserver.so`,
/// `libpkcs11ks.so`); a missing one fails naming the build command.
pub fn artefact(name: &str) -> PathBuf {
    let p = profile_dir().join(name);
    let package = match name {
        "ksc" => "ks-cli",
        "ks-devserver" => "ks-devserver",
        "libkeyserver.so" => "ks-provider",
        "libpkcs11ks.so" => "ks-pkcs11",
        _ => "<package>",
    };
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build -p {package}` first",
        p.display()
    );
    p
}

/// Every artefact the tutorial script needs, checked up front.
pub fn require_all_artefacts() {
    for a in ["ksc", "ks-devserver", "libkeyserver.so", "libpkcs11ks.so"] {
        artefact(a);
    }
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

/// libp11's OpenSSL engine in OpenSSL's engines directory (package
/// libengine-pkcs11-openssl).
pub fn libp11_engine() -> PathBuf {
    let out = run_ok(Command::new(tool("openssl", "openssl")).args(["version", "-e"]));
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text
        .trim()
        .strip_prefix("ENGINESDIR: \"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or("/usr/lib/x86_64-linux-gnu/engines-3")
        .to_string();
    ["pkcs11.so", "libpkcs11.so"]
        .iter()
        .map(|f| Path::new(&dir).join(f))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("libp11's engine is not in {dir}: install it with `apt-get install libengine-pkcs11-openssl`")
        })
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

/// A command with no inherited `KSC_*`, `OPENSSL_*` or GitHub identity variable, so the
/// caller's environment cannot change what a test exercises.
pub fn clean_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        // ACTIONS_ID_TOKEN_REQUEST_*: GitHub's ambient identity, when the suites run in a job.
        if k.starts_with("KSC_")
            || k.starts_with("OPENSSL_")
            || k.starts_with("ACTIONS_ID_TOKEN_REQUEST_")
            || k == "CARGO_TARGET_DIR"
        {
            cmd.env_remove(&*k);
        }
    }
    cmd
}

/// Checks with `openssl` that `sig` is a valid SHA-256 signature of `data`
/// by the public key of `cert` (PEM or DER certificate).
pub fn openssl_verify_with_cert(cert: &Path, sig: &Path, data: &Path) {
    let openssl = tool("openssl", "openssl");
    let bytes = std::fs::read(cert).unwrap_or_else(|e| panic!("read {}: {e}", cert.display()));
    let form = if bytes.starts_with(b"-----BEGIN") {
        "PEM"
    } else {
        "DER"
    };
    let pubkey = sig.with_extension("verify-pub.pem");
    run_ok(
        Command::new(&openssl)
            .args(["x509", "-inform", form, "-pubkey", "-noout", "-in"])
            .arg(cert)
            .arg("-out")
            .arg(&pubkey),
    );
    let out = run_ok(
        Command::new(&openssl)
            .args(["dgst", "-sha256", "-verify"])
            .arg(&pubkey)
            .arg("-signature")
            .arg(sig)
            .arg(data),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
        "{} does not verify",
        sig.display()
    );
    std::fs::remove_file(&pubkey).ok();
}

/// Processes whose command line mentions `needle` (Linux /proc).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(format!("{}: {}", name.to_string_lossy(), text.trim()));
            }
        }
    }
    found
}
