//! scripts/cleanroom.sh refuses clearly, before it mounts or starts anything:
//! bad options, too little disk, no root. (Its full run is CI's: .ci/run.)

use std::process::{Command, Output};

use ks_e2e::tutorial_support::repo_file;

fn cleanroom(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_file("scripts/cleanroom.sh")).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run scripts/cleanroom.sh")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unknown_options_and_bad_settings_are_usage_errors() {
    let out = cleanroom(&["--fast"], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("unknown option '--fast'"), "{out:?}");

    let out = cleanroom(&[], &[("CLEANROOM_MIN_FREE_GB", "lots")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("CLEANROOM_MIN_FREE_GB"), "{out:?}");

    let out = cleanroom(&["--help"], &[]);
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--room-only",
        "--docker-only",
        "--package-only",
        "CLEANROOM_MIRROR",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
}

#[test]
fn too_little_disk_is_named_before_anything_is_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("room-work");
    let work_str = work.to_str().expect("utf-8 path");
    let out = cleanroom(
        &[],
        &[
            ("CLEANROOM_DIR", work_str),
            ("CLEANROOM_MIN_FREE_GB", "99999999"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("GiB free on the disk") && err.contains("needs about 99999999 GiB"),
        "{err}"
    );
    assert!(!work.exists(), "it created {work:?} before refusing");
}

#[test]
fn without_root_it_says_it_needs_root() {
    // As root (CI), the refusal is shown by running it as `nobody`, from a
    // copy in a directory that user can read.
    let dir = tempfile::tempdir().expect("tempdir");
    let scripts = dir.path().join("scripts");
    std::fs::create_dir(&scripts).expect("mkdir");
    std::fs::copy(
        repo_file("scripts/cleanroom.sh"),
        scripts.join("cleanroom.sh"),
    )
    .expect("copy");
    use std::os::unix::fs::PermissionsExt;
    for p in [dir.path(), scripts.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .expect("id -u");
    let mut cmd = if is_root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"]);
        c
    } else {
        Command::new("bash")
    };
    let out = cmd
        .arg(scripts.join("cleanroom.sh"))
        .env("CLEANROOM_DIR", dir.path().join("work"))
        .env("CLEANROOM_MIN_FREE_GB", "0")
        .current_dir(dir.path())
        .output()
        .expect("run cleanroom.sh unprivileged");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("needs root"), "{out:?}");
    assert!(!dir.path().join("work").exists());
}
