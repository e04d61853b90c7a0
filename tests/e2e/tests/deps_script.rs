//! scripts/deps.sh decides by package, asking dpkg, never by probing files:
//! on a fresh Debian 12 `libclang-cpp14` ships a library that matched the old
//! file probe for `libclang-dev`, so bindgen's libclang was never installed.
//! These tests give it a fake dpkg status (DEPS_DPKG_STATUS) and check its
//! decision, and its message on a system without apt/dpkg.

use std::path::Path;
use std::process::{Command, Output};

use ks_e2e::tutorial_support::repo_file;

/// One dpkg status stanza.
fn stanza(package: &str, status: &str) -> String {
    format!("Package: {package}\nStatus: {status}\nArchitecture: amd64\nVersion: 1.0\n\n")
}

const BUILD: [&str; 10] = [
    "gcc",
    "libc6-dev",
    "pkg-config",
    "libclang-dev",
    "libssl-dev",
    "ca-certificates",
    "openssl",
    "curl",
    "jq",
    "libclang-cpp14",
];

fn check(status_file: &Path, profile: &str) -> Output {
    Command::new("bash")
        .arg(repo_file("scripts/deps.sh"))
        .args(["--check", profile])
        .env("DEPS_DPKG_STATUS", status_file)
        .output()
        .expect("run scripts/deps.sh")
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_neighbours_files_do_not_make_a_package_present() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = dir.path().join("status");
    // libclang-cpp14 installed (its libclang-cpp.so.14 is what fooled the
    // old probe), libclang-dev absent, libssl-dev removed but not purged.
    let mut text = String::new();
    for pkg in BUILD {
        match pkg {
            "libclang-dev" => {}
            "libssl-dev" => text.push_str(&stanza(pkg, "deinstall ok config-files")),
            _ => text.push_str(&stanza(pkg, "install ok installed")),
        }
    }
    std::fs::write(&status, text).expect("write status");
    let out = check(&status, "build");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(lines(&out), ["libclang-dev", "libssl-dev"]);

    // The tutorial profile adds pkcs11-tool's and libp11's packages.
    let out = check(&status, "tutorial");
    assert_eq!(
        lines(&out),
        [
            "libclang-dev",
            "libssl-dev",
            "opensc",
            "libengine-pkcs11-openssl"
        ]
    );

    // The package profile adds dpkg-dev (dpkg-shlibdeps, for the .deb's Depends).
    let out = check(&status, "package");
    assert_eq!(lines(&out), ["libclang-dev", "libssl-dev", "dpkg-dev"]);
}

#[test]
fn nothing_missing_prints_nothing_and_unknown_profiles_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = dir.path().join("status");
    let text: String = BUILD
        .iter()
        .map(|p| stanza(p, "install ok installed"))
        .collect();
    std::fs::write(&status, text).expect("write status");
    let out = check(&status, "build");
    assert!(out.status.success(), "{out:?}");
    assert!(lines(&out).is_empty(), "{out:?}");

    let out = check(&status, "everything");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown profile 'everything'"),
        "{out:?}"
    );
}

#[test]
fn without_apt_or_dpkg_it_names_what_is_needed() {
    // A PATH with bash and id only: no dpkg-query, no apt-get.
    let dir = tempfile::tempdir().expect("tempdir");
    for tool in ["bash", "id"] {
        let found = Command::new("bash")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .expect("command -v");
        let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
        assert!(!path.is_empty(), "{tool} not found");
        std::os::unix::fs::symlink(&path, dir.path().join(tool)).expect("symlink");
    }
    let out = Command::new(dir.path().join("bash"))
        .arg(repo_file("scripts/deps.sh"))
        .arg("cleanroom")
        .env_clear()
        .env("PATH", dir.path())
        .output()
        .expect("run scripts/deps.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr.contains("no apt-get/dpkg"), "{stderr}");
    assert!(
        stderr.contains("debootstrap") && stderr.contains("docker.io"),
        "{stderr}"
    );
}
