//! `scripts/install.sh --destdir`: the staged layout, the installed config
//! files naming the final paths, signing with the staged provider exactly as
//! `openssl dgst -provider-path <modules dir> -provider keyserver -sign ks:key1`,
//! and `--uninstall` removing it all again; an edited config is kept on a
//! reinstall (the new one beside it as `<name>.new`) and on `--uninstall`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ks_devserver::harness::DevServer;
use ks_e2e::tutorial_support::{
    artefact, clean_command, openssl_verify_with_cert, repo_file, run_ok, target_and_profile, tool,
};

fn install(args: &[&str], destdir: &Path) -> String {
    let (target, profile) = target_and_profile();
    let out = run_ok(
        clean_command("bash")
            .arg(repo_file("scripts/install.sh"))
            .arg("--destdir")
            .arg(destdir)
            .arg("--target-dir")
            .arg(target)
            .args(["--profile", &profile, "--no-build"])
            .args(args),
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn openssl_dir(flag: &str) -> String {
    let out = run_ok(Command::new(tool("openssl", "openssl")).args(["version", flag]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split('"')
        .nth(1)
        .expect("a quoted directory")
        .to_string()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn destdir_install_lays_out_the_files_and_the_staged_provider_signs() {
    for a in ["ksc", "libkeyserver.so", "libpkcs11ks.so"] {
        artefact(a);
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("stage");
    let log = install(&[], &dest);

    let modulesdir = openssl_dir("-m");
    let pkcs11 = std::fs::read_dir(dest.join("usr/lib"))
        .expect("usr/lib")
        .flatten()
        .map(|e| e.path().join("pkcs11/libpkcs11ks.so"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| dest.join("usr/lib/pkcs11/libpkcs11ks.so"));
    let pkcs11_final = Path::new("/").join(pkcs11.strip_prefix(&dest).expect("under destdir"));
    let provider = dest
        .join(modulesdir.trim_start_matches('/'))
        .join("keyserver.so");
    let expected = [
        (provider.clone(), 0o755),
        (pkcs11.clone(), 0o755),
        (dest.join("usr/bin/ksc"), 0o755),
        (
            dest.join("usr/share/p11-kit/modules/keyserver.module"),
            0o644,
        ),
        (dest.join("etc/keyserver-signing/openssl-ks.cnf"), 0o644),
        (
            dest.join("etc/keyserver-signing/openssl-pkcs11-engine.cnf"),
            0o644,
        ),
        (dest.join("etc/keyserver-signing/ksc.conf"), 0o644),
        (dest.join("usr/share/man/man1/ksc.1"), 0o644),
        (
            dest.join("usr/share/bash-completion/completions/ksc"),
            0o644,
        ),
        (dest.join("usr/share/zsh/vendor-completions/_ksc"), 0o644),
        (
            dest.join("usr/share/fish/vendor_completions.d/ksc.fish"),
            0o644,
        ),
    ];
    for (path, mode) in &expected {
        let meta = std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{} not installed ({e}); log:\n{log}", path.display()));
        assert_eq!(
            meta.permissions().mode() & 0o777,
            *mode,
            "{}",
            path.display()
        );
        assert!(log.contains(&path.display().to_string()), "{log}");
    }
    // Beside them, the record of what was written (for telling edits from older versions).
    let sums = std::fs::read_to_string(dest.join("etc/keyserver-signing/.installed-sums"))
        .expect(".installed-sums");
    for name in ["openssl-ks.cnf", "openssl-pkcs11-engine.cnf", "ksc.conf"] {
        assert!(
            sums.lines().any(|l| l.ends_with(&format!("  {name}"))),
            "{sums}"
        );
    }
    assert_eq!(
        files_under(&dest).len(),
        expected.len() + 1,
        "only these files: {:?}",
        files_under(&dest)
    );
    assert_eq!(
        std::fs::read(&provider).expect("keyserver.so"),
        std::fs::read(artefact("libkeyserver.so")).expect("libkeyserver.so"),
        "keyserver.so is the built provider"
    );

    // The installed configuration names the final paths, not the staging dir.
    let read = |p: &str| std::fs::read_to_string(dest.join(p)).expect("installed file");
    let module = read("usr/share/p11-kit/modules/keyserver.module");
    assert!(
        module.contains(&format!("\nmodule: {}\n", pkcs11_final.display())),
        "{module}"
    );
    let engine = read("etc/keyserver-signing/openssl-pkcs11-engine.cnf");
    assert!(
        engine.contains(&format!("\nMODULE_PATH = {}\n", pkcs11_final.display())),
        "{engine}"
    );
    let enginesdir = openssl_dir("-e");
    assert!(
        engine.contains(&format!("\ndynamic_path = {enginesdir}/")),
        "{engine}"
    );
    let cnf = read("etc/keyserver-signing/openssl-ks.cnf");
    assert!(
        cnf.contains(&format!("\nmodule = {modulesdir}/keyserver.so\n")),
        "{cnf}"
    );
    assert_eq!(cnf.matches("\nmodule = ").count(), 1, "{cnf}");
    assert!(!cnf.contains(&dest.display().to_string()), "{cnf}");

    // The acceptance command with the staged modules directory. OpenSSL
    // (3.0 to 4.0) loads a provider as soon as it reads `-provider`, so
    // `-provider-path` has to come first; `OPENSSL_MODULES` works in any order.
    let server = DevServer::start();
    let token = server.token("orderer-client");
    let op = server.create_operation("orderer-client", &[("key1", 2)], 60_000);
    let env = server.client_env(&token, &op);
    let data = tmp.path().join("firmware.bin");
    std::fs::write(&data, b"signed by the installed provider\n").expect("data");
    let sig = tmp.path().join("firmware.sig");
    let sig2 = tmp.path().join("firmware2.sig");
    let cert = tmp.path().join("key1.pem");
    let modules = provider.parent().expect("modules dir");
    run_ok(
        clean_command(tool("openssl", "openssl"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["dgst", "-provider-path"])
            .arg(modules)
            .args([
                "-provider",
                "keyserver",
                "-sign",
                "ks:key1",
                "-sha256",
                "-out",
            ])
            .arg(&sig)
            .arg(&data),
    );
    run_ok(
        clean_command(tool("openssl", "openssl"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("OPENSSL_MODULES", modules)
            .args([
                "dgst",
                "-provider",
                "keyserver",
                "-sign",
                "ks:key1",
                "-sha256",
                "-out",
            ])
            .arg(&sig2)
            .arg(&data),
    );
    // The installed ksc reads the certificate.
    run_ok(
        clean_command(dest.join("usr/bin/ksc"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["cert", "key1", "-o"])
            .arg(&cert),
    );
    openssl_verify_with_cert(&cert, &sig, &data);
    openssl_verify_with_cert(&cert, &sig2, &data);

    // Uninstall removes every file it put there.
    let log = install(&["--uninstall"], &dest);
    assert_eq!(files_under(&dest), Vec::<PathBuf>::new(), "{log}");
}

#[test]
fn a_prefix_install_keeps_everything_under_the_prefix() {
    for a in ["ksc", "libkeyserver.so", "libpkcs11ks.so"] {
        artefact(a);
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("stage");
    let log = install(&["--prefix", "/opt/keyserver-signing"], &dest);
    let files = files_under(&dest);
    // 11 files and the record of the configs as written.
    assert_eq!(files.len(), 12, "{files:?}");
    for f in &files {
        assert!(
            f.starts_with(dest.join("opt/keyserver-signing")),
            "{} is outside the prefix",
            f.display()
        );
    }
    assert!(
        dest.join("opt/keyserver-signing/lib/ossl-modules/keyserver.so")
            .is_file(),
        "{files:?}"
    );
    assert!(
        log.contains("export OPENSSL_MODULES=/opt/keyserver-signing/lib/ossl-modules"),
        "{log}"
    );
    let cnf = std::fs::read_to_string(
        dest.join("opt/keyserver-signing/etc/keyserver-signing/openssl-ks.cnf"),
    )
    .expect("openssl-ks.cnf");
    assert!(
        cnf.contains("\nmodule = /opt/keyserver-signing/lib/ossl-modules/keyserver.so\n"),
        "{cnf}"
    );
    // --dry-run changes nothing.
    let dry = tmp.path().join("dry");
    install(&["--dry-run"], &dry);
    assert!(files_under(&dry).is_empty());
}

#[test]
fn an_edited_config_is_kept_on_reinstall_and_on_uninstall() {
    for a in ["ksc", "libkeyserver.so", "libpkcs11ks.so"] {
        artefact(a);
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("stage");
    install(&[], &dest);
    let conf = dest.join("etc/keyserver-signing/ksc.conf");
    let new = dest.join("etc/keyserver-signing/ksc.conf.new");
    let cnf = dest.join("etc/keyserver-signing/openssl-ks.cnf");
    let shipped = std::fs::read_to_string(&conf).expect("ksc.conf");

    // An unedited config is simply replaced: no .new beside it.
    let log = install(&[], &dest);
    assert!(!new.exists(), "{log}");
    assert!(!log.contains("kept"), "{log}");

    // An unedited config of an older version (what an earlier install wrote and recorded)
    // is updated, not mistaken for an edit.
    let sums = dest.join("etc/keyserver-signing/.installed-sums");
    let older = "# ksc.conf of an older version\nKSC_LOG=info\n";
    std::fs::write(&conf, older).expect("older ksc.conf");
    let recorded = std::fs::read_to_string(&sums).expect(".installed-sums");
    let older_sum = {
        let out = std::process::Command::new("sha256sum")
            .arg(&conf)
            .output()
            .expect("sha256sum");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .expect("a sum")
            .to_string()
    };
    let rewritten: String = recorded
        .lines()
        .map(|l| {
            if l.ends_with("  ksc.conf") {
                format!("{older_sum}  ksc.conf\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(rewritten, recorded, "ksc.conf is recorded: {recorded}");
    std::fs::write(&sums, rewritten).expect("record the older version");
    let log = install(&[], &dest);
    assert_eq!(
        std::fs::read_to_string(&conf).expect("ksc.conf"),
        shipped,
        "{log}"
    );
    assert!(!new.exists() && !log.contains("kept"), "{log}");

    // An edited one stays as the admin left it; the new one goes beside it.
    let edited = format!("{shipped}KSC_API_SERVER=https://keyserver.example.test\n");
    std::fs::write(&conf, &edited).expect("edit ksc.conf");
    let log = install(&[], &dest);
    assert_eq!(std::fs::read_to_string(&conf).expect("ksc.conf"), edited);
    assert_eq!(
        std::fs::read_to_string(&new).expect("ksc.conf.new"),
        shipped
    );
    assert!(
        log.contains(&format!(
            "install: kept {}: you edited it (it differs from what was installed); the new one is {}",
            conf.display(),
            new.display()
        )),
        "{log}"
    );
    // Only the edited file is kept; the others are installed as usual.
    assert!(
        log.contains(&format!("installed {}", cnf.display())),
        "{log}"
    );
    assert!(!dest
        .join("etc/keyserver-signing/openssl-ks.cnf.new")
        .exists());

    // --dry-run says what it would do and removes nothing.
    install(&["--uninstall", "--dry-run"], &dest);
    assert!(conf.is_file() && new.is_file() && cnf.is_file());

    // --uninstall removes what it installed (the .new too) and keeps the edit.
    let log = install(&["--uninstall"], &dest);
    assert_eq!(files_under(&dest), vec![conf.clone()], "{log}");
    assert_eq!(std::fs::read_to_string(&conf).expect("ksc.conf"), edited);
    assert!(
        log.contains(&format!(
            "install: kept {}: you edited it (it differs from what was installed)",
            conf.display()
        )),
        "{log}"
    );
    assert!(log.contains(&format!("removed {}", new.display())), "{log}");
}
