//! The README keeps its promises: it starts with the two commands (the
//! tutorial flow, then the test command `.ci/run` calls), and its manual
//! covers every option of the scripts and every setting the client reads.

use ks_e2e::tutorial_support::repo_file;

fn readme() -> String {
    std::fs::read_to_string(repo_file("README.md")).expect("read README.md")
}

#[test]
fn readme_starts_with_the_two_commands_and_ci_runs_the_second() {
    let text = readme();
    let block = text
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a first sh code block");
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        commands,
        ["bash scripts/signandvalidate.sh", "bash scripts/test.sh"],
        "the README's first block"
    );
    let before: &str = text.split("```sh\n").next().unwrap_or("");
    assert!(
        before.lines().filter(|l| !l.trim().is_empty()).count() <= 1,
        "only the title comes before the two commands"
    );
    // CI runs both commands in the clean room, which reads them from this
    // very block of the README (so the two can never drift apart).
    let ci = std::fs::read_to_string(repo_file(".ci/run")).expect("read .ci/run");
    assert!(
        ci.lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("scripts/cleanroom.sh")),
        ".ci/run must run the clean room:\n{ci}"
    );
    let room = std::fs::read_to_string(repo_file("scripts/cleanroom.sh")).expect("cleanroom.sh");
    assert!(
        room.contains("README.md") && room.contains("/^```sh$/"),
        "scripts/cleanroom.sh must run the README's first sh block"
    );
    repo_file("scripts/signandvalidate.sh");
    repo_file("scripts/test.sh");
}

#[test]
fn readme_documents_every_script_option_and_every_setting() {
    let text = readme();
    for script in ["scripts/signandvalidate.sh", "scripts/install.sh"] {
        let source = std::fs::read_to_string(repo_file(script)).expect("read script");
        let options: Vec<&str> = source
            .lines()
            .filter_map(|l| {
                let l = l.trim_start();
                let label = l.split(')').next()?;
                (l.contains(')') && label.starts_with("--") && !label.contains(' '))
                    .then_some(label)
            })
            .collect();
        assert!(options.len() >= 8, "{script}: {options:?}");
        for o in options {
            assert!(text.contains(o), "README.md does not mention {script} {o}");
        }
    }
    // The settings ks-common reads (common/src/config.rs ALL_VARIABLES) and
    // the provider parameters of conf/openssl-ks.cnf.
    let config = std::fs::read_to_string(repo_file("common/src/config.rs")).expect("config.rs");
    let vars: Vec<&str> = config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const KSC_"))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert!(vars.len() >= 12, "{vars:?}");
    for v in vars {
        assert!(
            text.contains(&format!("`KSC_{v}`")),
            "README.md does not document KSC_{v}"
        );
    }
    let cnf = std::fs::read_to_string(repo_file("conf/openssl-ks.cnf")).expect("openssl-ks.cnf");
    for param in cnf
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, _)| k.trim())
        .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    {
        assert!(
            text.contains(&format!("`{param}`")),
            "README.md does not document the provider parameter {param}"
        );
    }
}
