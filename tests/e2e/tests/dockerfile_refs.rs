//! The Dockerfile cannot be built here (no Docker engine), so this suite checks
//! what can go stale without one: multi-stage with pinned base images, every
//! file it copies from the build context exists and is not excluded by
//! .dockerignore, every repository script it runs exists and accepts the
//! options it is given, every package it builds is a workspace package, and
//! the runtime stage copies from a stage that exists.

use std::collections::BTreeSet;

use ks_e2e::tutorial_support::{repo_file, repo_root};

/// Instructions with line continuations joined: (keyword, arguments).
fn instructions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_file("Dockerfile")).expect("read Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (kw, rest) = current
                    .split_once(char::is_whitespace)
                    .unwrap_or((&current, ""));
                out.push((kw.to_ascii_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    assert!(
        current.is_empty(),
        "the Dockerfile ends inside a continued line"
    );
    out
}

fn dockerignore() -> Vec<String> {
    std::fs::read_to_string(repo_file(".dockerignore"))
        .expect("read .dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn workspace_packages() -> BTreeSet<String> {
    let root = repo_root();
    let ws = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace Cargo.toml");
    let members = ws
        .split("members")
        .nth(1)
        .and_then(|s| s.split('[').nth(1))
        .and_then(|s| s.split(']').next())
        .expect("workspace members");
    members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| {
            let manifest = std::fs::read_to_string(root.join(m).join("Cargo.toml"))
                .unwrap_or_else(|e| panic!("{m}/Cargo.toml: {e}"));
            manifest
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = "))
                .map(|n| n.trim_matches('"').to_string())
                .unwrap_or_else(|| panic!("{m}: no package name"))
        })
        .collect()
}

/// Options a repository script accepts (its `--name)` case labels).
fn script_options(script: &str) -> BTreeSet<String> {
    std::fs::read_to_string(repo_file(script))
        .expect("read script")
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let label = l.split(')').next()?;
            (l.contains(')') && label.starts_with("--") && !label.contains(' '))
                .then(|| label.split('|').map(str::to_string).collect::<Vec<_>>())
        })
        .flatten()
        .collect()
}

#[test]
fn multi_stage_with_pinned_base_images() {
    let ins = instructions();
    let args: Vec<(String, String)> = ins
        .iter()
        .filter(|(k, _)| k == "ARG")
        .filter_map(|(_, a)| {
            a.split_once('=')
                .map(|(n, v)| (n.to_string(), v.to_string()))
        })
        .collect();
    let froms: Vec<&String> = ins
        .iter()
        .filter(|(k, _)| k == "FROM")
        .map(|(_, a)| a)
        .collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    for from in froms {
        let image = from.split_whitespace().next().expect("an image");
        let resolved = match image.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
            Some(arg) => args
                .iter()
                .find(|(n, _)| n == arg)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("FROM {image}: no ARG {arg} with a default")),
            None => image.to_string(),
        };
        if resolved == "build" {
            continue; // a stage built on an earlier stage
        }
        let tag = resolved
            .split_once(':')
            .map(|(_, t)| t)
            .unwrap_or_else(|| panic!("{resolved}: no tag"));
        assert!(
            !tag.contains("latest")
                && tag
                    .split(['.', '-'])
                    .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
                    .count()
                    >= 2,
            "{resolved}: pin an exact version (major.minor at least)"
        );
    }
}

#[test]
fn everything_the_dockerfile_refers_to_exists() {
    let root = repo_root();
    let ins = instructions();
    let ignored = dockerignore();
    let stages: BTreeSet<String> = ins
        .iter()
        .filter(|(k, _)| k == "FROM")
        .filter_map(|(_, a)| {
            let parts: Vec<&str> = a.split_whitespace().collect();
            (parts.len() == 3 && parts[1].eq_ignore_ascii_case("AS")).then(|| parts[2].to_string())
        })
        .collect();
    assert!(
        stages.contains("build") && stages.contains("runtime"),
        "{stages:?}"
    );

    let mut copied = 0;
    for (kw, args) in &ins {
        if kw == "COPY" || kw == "ADD" {
            let parts: Vec<&str> = args.split_whitespace().collect();
            if let Some(from) = parts.iter().find_map(|p| p.strip_prefix("--from=")) {
                assert!(stages.contains(from), "COPY --from={from}: no such stage");
                continue;
            }
            let sources = &parts[..parts.len() - 1];
            for src in sources.iter().filter(|s| !s.starts_with("--")) {
                if *src == "." {
                    continue;
                }
                assert!(root.join(src).exists(), "COPY {src}: not in the repository");
                assert!(
                    !ignored.iter().any(|i| src.starts_with(i.as_str())),
                    "COPY {src} is excluded by .dockerignore"
                );
                copied += 1;
            }
        }
        if kw == "RUN" || kw == "CMD" || kw == "ENTRYPOINT" {
            // Repository scripts, referred to relative to the context or
            // where the image keeps the repository's scripts.
            let text = args.replace("/opt/keyserver-signing/", "");
            for (i, _) in text.match_indices("scripts/") {
                let name: String = text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "/._-".contains(*c))
                    .collect();
                if name == "scripts/" {
                    continue;
                }
                assert!(
                    root.join(&name).is_file(),
                    "{kw} uses {name}: not in the repository"
                );
                // Each option given to the script is one it accepts.
                let after = &text[i + name.len()..];
                let call = after.split(['&', ';', '"']).next().unwrap_or("");
                let known = script_options(&name);
                for opt in call.split_whitespace().filter(|w| w.starts_with("--")) {
                    assert!(known.contains(opt), "{name} has no option {opt}: {known:?}");
                }
            }
            // Every package cargo builds is a workspace package.
            let packages = workspace_packages();
            for command in args.split(['&', ';']).filter(|c| c.contains("cargo ")) {
                let words: Vec<&str> = command.split_whitespace().collect();
                for w in words.windows(2).filter(|w| w[0] == "-p") {
                    assert!(
                        packages.contains(w[1]),
                        "cargo -p {}: not a workspace package",
                        w[1]
                    );
                }
            }
        }
    }
    assert!(copied >= 1, "the build stage copies repository files");
    // The artefacts the runtime stage ships are what the build produces.
    let all: String = ins
        .iter()
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for artefact in ["ksc", "ks-devserver", "libkeyserver.so", "libpkcs11ks.so"] {
        assert!(
            all.contains(&format!("target/release/{artefact}")),
            "the image lacks {artefact}"
        );
    }
    assert!(all.contains("/output"), "the container writes to /output");
}
