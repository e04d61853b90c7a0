//! The CI examples in conf/ci/: parsed as YAML, checked for the parts that
//! make them work (GitLab `id_tokens` as KSC_ID_TOKEN, GitHub's `id-token:
//! write` and ksc's built-in GitHub OIDC identity, every KSC_* setting one the
//! README documents), and their signing commands run against the dev
//! KeyServer, an approver approving while the job waits: GitLab's with a dev
//! token as its id_token, GitHub's with tokens from a stand-in for GitHub's
//! token service that the dev KeyServer trusts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ks_devserver::harness::{DevServer, TestIssuer};
use ks_e2e::github_oidc_support::{server_trusting_audience, GithubTokenService};
use ks_e2e::tutorial_support::{
    artefact, clean_command, openssl_verify_with_cert, repo_file, run_ok, tool,
};
use serde_yaml::Value;

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_file(path)).expect("read the example");
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .expect("a mapping")
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => panic!("unexpected value {other:?}"),
            };
            (k.as_str().expect("a string key").to_string(), v)
        })
        .collect()
}

/// The environment a job step gets here: a bin dir holding ksc first on
/// PATH, keyserver.so in OPENSSL_MODULES, the dev KeyServer's CA and API.
fn tools_env(dir: &Path, server: &DevServer) -> Vec<(String, String)> {
    let bin = dir.join("bin");
    let modules = dir.join("ossl-modules");
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::fs::create_dir_all(&modules).expect("modules dir");
    std::os::unix::fs::symlink(artefact("ksc"), bin.join("ksc")).expect("symlink ksc");
    std::os::unix::fs::symlink(artefact("libkeyserver.so"), modules.join("keyserver.so"))
        .expect("symlink keyserver.so");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    vec![
        ("PATH".into(), path),
        ("OPENSSL_MODULES".into(), modules.display().to_string()),
        ("KSC_CA_FILE".into(), server.ca_file().display().to_string()),
        (
            "KSC_SIGNING_CA_FILE".into(),
            server.signing_ca_file().display().to_string(),
        ),
        ("KSC_API_SERVER".into(), server.api_url().to_string()),
    ]
}

fn firmware(dir: &Path) -> PathBuf {
    let f = dir.join("build/firmware.bin");
    std::fs::create_dir_all(f.parent().expect("build dir")).expect("build dir");
    std::fs::write(&f, b"firmware built by the CI job\n".repeat(1000)).expect("firmware");
    f
}

/// Every `KSC_*` setting the example sets is a row of the README's
/// Configuration table, and a `KSC_ID_TOKEN_SOURCE` value is one it lists.
fn settings_are_documented(vars: &BTreeMap<String, String>) {
    let readme = std::fs::read_to_string(repo_file("README.md")).expect("README");
    for (k, v) in vars.iter().filter(|(k, _)| k.starts_with("KSC_")) {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{k}`")))
            .unwrap_or_else(|| panic!("{k} is not in the README's Configuration table"));
        if k == "KSC_ID_TOKEN_SOURCE" {
            assert!(row.contains(&format!("`{v}`")), "{k}={v} is not documented");
        }
    }
}

fn check_signatures(fw: &Path) {
    for key in ["key1", "key4"] {
        let sig = PathBuf::from(format!("{}.{key}.sig", fw.display()));
        let cert = PathBuf::from(format!("{}.{key}.crt", fw.display()));
        openssl_verify_with_cert(&cert, &sig, fw);
    }
}

#[test]
fn gitlab_job_uses_its_id_token_and_signs_after_approval() {
    tool("openssl", "openssl");
    let yaml = load("conf/ci/gitlab-ci.yml");
    let job = &yaml["sign-firmware"];
    assert!(job.is_mapping(), "no sign-firmware job");
    let aud = job["id_tokens"]["KSC_ID_TOKEN"]["aud"]
        .as_str()
        .expect("id_tokens: KSC_ID_TOKEN: aud");
    assert!(aud.starts_with("https://"), "{aud}");
    let vars = string_map(&job["variables"]);
    assert_eq!(
        vars.get("KSC_ID_TOKEN_SOURCE").map(String::as_str),
        Some("token"),
        "the job's id_token is chosen explicitly"
    );
    settings_are_documented(&vars);
    assert_eq!(job["retry"].as_u64(), Some(0), "no automatic retries");
    let stages: Vec<&str> = yaml["stages"]
        .as_sequence()
        .expect("stages")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(stages.contains(&job["stage"].as_str().expect("stage")));
    let script: Vec<&str> = job["script"]
        .as_sequence()
        .expect("script")
        .iter()
        .map(|l| l.as_str().expect("script lines are strings"))
        .collect();

    let server = DevServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let fw = firmware(tmp.path());
    // GitLab's predefined variables the example refers to, and the job's
    // variables with them expanded (GitLab expands them itself).
    let predefined = [
        ("CI_PROJECT_PATH", "group/firmware"),
        ("CI_COMMIT_REF_NAME", "main"),
        ("CI_COMMIT_SHORT_SHA", "0123abcd"),
    ];
    let mut cmd = clean_command(tool("bash", "bash"));
    cmd.envs(predefined);
    for (k, mut v) in string_map(&job["variables"]) {
        for (p, pv) in predefined {
            v = v.replace(&format!("${p}"), pv);
        }
        cmd.env(k, v);
    }
    // What the runner injects: the dev token in place of the job's JWT.
    cmd.env("KSC_ID_TOKEN", server.token("orderer-client"));
    cmd.envs(tools_env(tmp.path(), &server));
    cmd.args(["-eo", "pipefail", "-c", &script.join("\n")])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run the job script");
    let stderr = child.stderr.take().expect("stderr");
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s).ok();
        s
    });
    let mut seen = String::new();
    let mut op = None;
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("stdout line");
        if let Some(id) = line
            .strip_prefix("KeyServer operation ")
            .and_then(|l| l.strip_suffix(" waits for approval"))
        {
            let st = server.operation(id);
            assert_eq!(st["status"], "pending", "{st}");
            assert_eq!(
                st["description"], "group/firmware main 0123abcd: firmware release build",
                "{st}"
            );
            server.approve("approver-key4", id);
            op = Some(id.to_string());
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    let status = child.wait().expect("wait");
    let err = err.join().expect("stderr thread");
    assert!(status.success(), "the job failed:\n{seen}\n{err}");
    let op = op.unwrap_or_else(|| panic!("the job never said what it waits for:\n{seen}"));
    assert_eq!(seen.matches("Verified OK").count(), 2, "{seen}");
    check_signatures(&fw);
    let st = server.operation(&op);
    for u in st["keyusagerestrictions"].as_array().expect("uses") {
        assert_eq!(u["usagecount"], 1, "one use each: {st}");
    }
}

#[test]
fn github_workflow_requests_an_oidc_token_and_signs_after_approval() {
    tool("openssl", "openssl");
    let yaml = load("conf/ci/github-actions.yml");
    assert_eq!(
        yaml["permissions"]["id-token"].as_str(),
        Some("write"),
        "the OIDC token needs id-token: write"
    );
    let job = &yaml["jobs"]["sign"];
    let steps = job["steps"].as_sequence().expect("steps");
    // ksc fetches GitHub's token itself: no step does it by hand.
    for step in steps {
        let run = step["run"].as_str().unwrap_or_default();
        for part in ["curl", "jq ", "ACTIONS_ID_TOKEN_REQUEST", "KSC_ID_TOKEN="] {
            assert!(!run.contains(part), "a step still handles tokens: {run}");
        }
    }
    let vars = string_map(&job["env"]);
    assert_eq!(
        vars.get("KSC_ID_TOKEN_SOURCE").map(String::as_str),
        Some("github")
    );
    let audience = vars.get("KSC_OIDC_AUDIENCE").expect("KSC_OIDC_AUDIENCE");
    assert!(audience.starts_with("https://"), "{audience}");
    settings_are_documented(&vars);

    let tmp = tempfile::tempdir().expect("tempdir");
    let issuer = TestIssuer::new();
    let server = server_trusting_audience(&issuer, tmp.path(), audience);
    let request_token = "ghs_runner-request-token-for-this-job";
    let gh = GithubTokenService::start(issuer, request_token, 300);
    let fw = firmware(tmp.path());
    let github_env = tmp.path().join("github_env");
    std::fs::write(&github_env, "").expect("GITHUB_ENV");
    let expressions = [
        ("${{ github.repository }}", "org/firmware"),
        ("${{ github.ref_name }}", "v1.2.3"),
        ("${{ github.sha }}", "0123abcdef"),
    ];
    let mut base: Vec<(String, String)> = string_map(&job["env"])
        .into_iter()
        .map(|(k, mut v)| {
            for (e, ev) in expressions {
                v = v.replace(e, ev);
            }
            assert!(!v.contains("${{"), "unexpanded expression in {k}: {v}");
            (k, v)
        })
        .collect();
    base.extend(tools_env(tmp.path(), &server));
    base.push(("GITHUB_ENV".into(), github_env.display().to_string()));
    // What the runner sets in a job with `id-token: write`.
    base.push(("ACTIONS_ID_TOKEN_REQUEST_URL".into(), gh.request_url()));
    base.push((
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(),
        request_token.into(),
    ));

    let mut ran = Vec::new();
    for step in steps {
        let (Some(id), Some(run)) = (step["id"].as_str(), step["run"].as_str()) else {
            continue; // `uses:` steps (checkout, upload) are GitHub's own
        };
        if id == "build" {
            continue; // the user's build
        }
        // GitHub runs each step with `sh -e` in a container, with the job's
        // env and whatever earlier steps appended to $GITHUB_ENV.
        let mut cmd = clean_command(tool("sh", "dash"));
        cmd.envs(base.iter().map(|(k, v)| (k, v)));
        let appended = std::fs::read_to_string(&github_env).expect("GITHUB_ENV");
        for line in appended.lines() {
            if let Some((k, v)) = line.split_once('=') {
                cmd.env(k, v);
            }
        }
        let out = run_ok(cmd.args(["-e", "-c", run]).current_dir(tmp.path()));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains(request_token), "{stderr}");
        if id == "operation" {
            let appended = std::fs::read_to_string(&github_env).expect("GITHUB_ENV");
            let op = appended
                .lines()
                .find_map(|l| l.strip_prefix("KSC_OPERATION_ID="))
                .unwrap_or_else(|| panic!("no KSC_OPERATION_ID in $GITHUB_ENV: {appended}"))
                .to_string();
            assert!(
                stdout.contains(&format!("KeyServer operation {op} waits for approval")),
                "{stdout}"
            );
            let st = server.operation(&op);
            assert_eq!(
                st["description"], "org/firmware v1.2.3 0123abcdef: firmware release build",
                "{st}"
            );
            server.approve("approver-key4", &op);
        }
        if id == "sign" {
            assert_eq!(stdout.matches("Verified OK").count(), 2, "{stdout}");
        }
        ran.push(id.to_string());
    }
    assert_eq!(ran, ["operation", "approval", "sign"]);
    check_signatures(&fw);
    assert!(gh.hits() >= 3, "every step fetched GitHub's token itself");
    assert_eq!(gh.refused(), 0);
}

#[test]
fn ci_examples_use_only_commands_that_exist() {
    // Every ksc subcommand the examples call is one ksc has.
    let help = run_ok(Command::new(artefact("ksc")).arg("--help")).stdout;
    let help = String::from_utf8_lossy(&help);
    for file in ["conf/ci/gitlab-ci.yml", "conf/ci/github-actions.yml"] {
        let text = std::fs::read_to_string(repo_file(file)).expect("read");
        let words: Vec<&str> = text
            .split(['(', '\n', '$'])
            .filter_map(|s| s.trim().trim_start_matches("- ").strip_prefix("ksc "))
            .filter_map(|rest| rest.split_whitespace().next())
            .collect();
        assert!(
            words.contains(&"operation") && words.contains(&"cert"),
            "{file}: {words:?}"
        );
        for word in words {
            assert!(
                help.contains(&format!("  {word}")),
                "{file}: `ksc {word}` is not a ksc command"
            );
        }
    }
}
