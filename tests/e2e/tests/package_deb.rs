//! `scripts/package.sh`, without root: the .deb cargo-deb builds from the
//! `install.sh --destdir` tree holds every file at its installed path (read
//! with `dpkg-deb -c`), lists the configs as conffiles, has Depends and the
//! Cargo version (`dpkg-deb -I`), and its files, unpacked with `dpkg-deb -x`,
//! name the installed paths and run. Installing, upgrading over an edited
//! config and removing it run as root in the clean room
//! (`tests/package/check.sh`). Bad options and a missing cargo-deb or dpkg
//! fail with a message and build nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ks_e2e::tutorial_support::{
    artefact, clean_command, repo_file, repo_root, run_ok, target_and_profile, tool,
};

fn package_sh(args: &[&str]) -> Command {
    let (target, profile) = target_and_profile();
    let mut cmd = clean_command("bash");
    cmd.arg(repo_file("scripts/package.sh"))
        .args(["--no-build", "--fast", "--profile", &profile])
        .args(args)
        .env("CARGO_TARGET_DIR", target);
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn openssl_dir(flag: &str) -> String {
    let out = run_ok(Command::new(tool("openssl", "openssl")).args(["version", flag]));
    String::from_utf8_lossy(&out.stdout)
        .split('"')
        .nth(1)
        .expect("a quoted directory")
        .to_string()
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = run_ok(Command::new(tool("dpkg-deb", "dpkg")).args(args).arg(deb));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_deb_holds_every_file_at_its_installed_path_with_conffiles_and_depends() {
    for a in ["ksc", "libkeyserver.so", "libpkcs11ks.so"] {
        artefact(a);
    }
    // cargo-deb, pinned, in the project's tools directory (the script's job).
    let (target, _) = target_and_profile();
    run_ok(
        clean_command("bash")
            .arg(repo_file("scripts/deps.sh"))
            .arg("package")
            .env("CARGO_TARGET_DIR", &target),
    );
    let out = run_ok(&mut package_sh(&[]));
    let (stdout, stderr) = text(&out);
    let deb = PathBuf::from(stdout.trim());
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    let arch = String::from_utf8_lossy(
        &run_ok(Command::new(tool("dpkg", "dpkg")).arg("--print-architecture")).stdout,
    )
    .trim()
    .to_string();
    assert_eq!(
        deb,
        target.join(format!("debian/keyserver-signing_{version}_{arch}.deb")),
        "{stderr}"
    );

    // The files, at the paths install.sh uses on this system.
    let listing = dpkg_deb(&["-c"], &deb);
    let modulesdir = openssl_dir("-m");
    let multiarch = String::from_utf8_lossy(
        &run_ok(Command::new(tool("dpkg-architecture", "dpkg-dev")).arg("-qDEB_HOST_MULTIARCH"))
            .stdout,
    )
    .trim()
    .to_string();
    let pkcs11 = format!("/usr/lib/{multiarch}/pkcs11/libpkcs11ks.so");
    let expected = [
        ("-rwxr-xr-x", "/usr/bin/ksc".to_string()),
        ("-rwxr-xr-x", format!("{modulesdir}/keyserver.so")),
        ("-rwxr-xr-x", pkcs11.clone()),
        (
            "-rw-r--r--",
            "/usr/share/p11-kit/modules/keyserver.module".into(),
        ),
        ("-rw-r--r--", "/etc/keyserver-signing/ksc.conf".into()),
        ("-rw-r--r--", "/etc/keyserver-signing/openssl-ks.cnf".into()),
        (
            "-rw-r--r--",
            "/etc/keyserver-signing/openssl-pkcs11-engine.cnf".into(),
        ),
        ("-rw-r--r--", "/usr/share/man/man1/ksc.1.gz".into()),
        (
            "-rw-r--r--",
            "/usr/share/bash-completion/completions/ksc".into(),
        ),
        (
            "-rw-r--r--",
            "/usr/share/zsh/vendor-completions/_ksc".into(),
        ),
        (
            "-rw-r--r--",
            "/usr/share/fish/vendor_completions.d/ksc.fish".into(),
        ),
        (
            "-rw-r--r--",
            "/usr/share/doc/keyserver-signing/copyright".into(),
        ),
    ];
    for (mode, path) in &expected {
        let rel = path.trim_start_matches('/');
        assert!(
            listing.lines().any(|l| l.starts_with(mode)
                && (l.ends_with(&format!(" {rel}")) || l.ends_with(&format!(" ./{rel}")))),
            "{mode} {path} is not in the package:\n{listing}"
        );
    }

    // The control data: name, Cargo's version, Depends, conffiles.
    let field = |name: &str| {
        dpkg_deb(&["-f"], &deb)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    };
    assert_eq!(field("Package").as_deref(), Some("keyserver-signing"));
    assert_eq!(field("Version").as_deref(), Some(version.as_str()));
    assert_eq!(field("Architecture").as_deref(), Some(arch.as_str()));
    let depends = field("Depends").expect("a Depends field");
    assert!(depends.contains("libc6"), "$auto: {depends}");
    assert!(depends.contains("libssl3 | libssl3t64"), "{depends}");
    let info = dpkg_deb(&["-I"], &deb);
    assert!(info.contains(" conffiles"), "{info}");
    let ctrl = tempfile::tempdir().expect("tempdir");
    run_ok(
        Command::new(tool("dpkg-deb", "dpkg"))
            .arg("-e")
            .arg(&deb)
            .arg(ctrl.path()),
    );
    let conffiles = std::fs::read_to_string(ctrl.path().join("conffiles")).expect("conffiles");
    let mut listed: Vec<&str> = conffiles.lines().collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "/etc/keyserver-signing/ksc.conf",
            "/etc/keyserver-signing/openssl-ks.cnf",
            "/etc/keyserver-signing/openssl-pkcs11-engine.cnf"
        ]
    );

    // Unpacked: the configs name the installed paths, and ksc runs.
    let unpacked = tempfile::tempdir().expect("tempdir");
    run_ok(
        Command::new(tool("dpkg-deb", "dpkg"))
            .arg("-x")
            .arg(&deb)
            .arg(unpacked.path()),
    );
    let read = |p: &str| std::fs::read_to_string(unpacked.path().join(p)).expect("packaged file");
    let cnf = read("etc/keyserver-signing/openssl-ks.cnf");
    assert!(
        cnf.contains(&format!("\nmodule = {modulesdir}/keyserver.so\n")),
        "{cnf}"
    );
    let module = read("usr/share/p11-kit/modules/keyserver.module");
    assert!(
        module.contains(&format!("\nmodule: {pkcs11}\n")),
        "{module}"
    );
    let engine = read("etc/keyserver-signing/openssl-pkcs11-engine.cnf");
    assert!(
        engine.contains(&format!("\nMODULE_PATH = {pkcs11}\n")),
        "{engine}"
    );
    assert!(!cnf.contains("deb-stage") && !engine.contains("deb-stage"));
    let ksc = run_ok(clean_command(unpacked.path().join("usr/bin/ksc")).arg("--version"));
    assert!(
        String::from_utf8_lossy(&ksc.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{ksc:?}"
    );

    // --deb-version sets the version (the clean room's upgrade uses it).
    let out = run_ok(&mut package_sh(&["--deb-version", "0.1.0-1+test"]));
    let bumped = PathBuf::from(text(&out).0.trim());
    assert!(
        bumped.ends_with(format!("keyserver-signing_0.1.0-1+test_{arch}.deb")),
        "{bumped:?}"
    );
    std::fs::remove_file(&bumped).expect("remove the test package");
}

#[test]
fn bad_options_and_missing_tools_fail_with_a_message() {
    for (args, message) in [
        (
            &["--deb-version", "1 2"][..],
            "--deb-version '1 2' is not a Debian version",
        ),
        (&["--profile", "fast"], "--profile must be release or debug"),
        (&["--deb-version"], "--deb-version needs a value"),
        (&["--bogus"], "unknown option --bogus"),
    ] {
        let out = clean_command("bash")
            .arg(repo_file("scripts/package.sh"))
            .args(args)
            .output()
            .expect("run package.sh");
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    // No cargo-deb in the tools directory nor on PATH: says how to get it.
    let empty = tempfile::tempdir().expect("tempdir");
    let out = clean_command("bash")
        .arg(repo_file("scripts/package.sh"))
        .arg("--no-build")
        .env("CARGO_TARGET_DIR", empty.path())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run package.sh");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cargo-deb not found; get it with: bash scripts/deps.sh package"),
        "{stderr}"
    );
    assert!(std::fs::read_dir(empty.path())
        .expect("dir")
        .next()
        .is_none());

    // Not Debian (no dpkg at all): says so and points to install.sh.
    let bin = tempfile::tempdir().expect("tempdir");
    for t in ["bash", "dirname", "sed"] {
        let found = run_ok(Command::new("bash").args(["-c", &format!("command -v {t}")]));
        let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
        std::os::unix::fs::symlink(&path, bin.path().join(t)).expect("symlink");
    }
    let out = clean_command(bin.path().join("bash"))
        .arg(repo_file("scripts/package.sh"))
        .current_dir(repo_root())
        .env("PATH", bin.path())
        .output()
        .expect("run package.sh");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("this is not Debian or Ubuntu (no dpkg)")
            && stderr.contains("scripts/install.sh"),
        "{stderr}"
    );
}
