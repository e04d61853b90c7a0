//! `openssl storeutl` over the provider's `ks` store, against the dev KeyServer:
//! `ks:` lists one named entry per key with a description a person can tell the
//! keys apart by; `ks:<keyid>` yields the key, its public key and its
//! certificate; an expected type (`-keys`, `-certs`) is honoured; `-r` opens each
//! listed name; searches by alias and subject narrow the keys; an unknown or
//! malformed key is a clear error.

use ks_e2e::provider_support::{keyserver_error_line, run_fail, run_ok, ProviderEnv, DEV_KEYS};
use ks_e2e::tutorial_support::artefact;

/// `openssl storeutl -provider keyserver -provider default <args>`: its stdout.
fn storeutl(env: &ProviderEnv, args: &[&str]) -> String {
    let mut all = vec!["storeutl", "-provider", "keyserver", "-provider", "default"];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&env.openssl_ok(&all).stdout).into_owned()
}

/// How many names, private keys, public keys and certificates storeutl listed
/// at the top level (`N: Type` lines; recursion indents its own).
fn counts(text: &str) -> [usize; 4] {
    let mut c = [0; 4];
    for line in text.lines() {
        let Some((n, what)) = line.split_once(": ") else {
            continue;
        };
        if n.parse::<u32>().is_err() {
            continue;
        }
        let i = match what {
            w if w.starts_with("Name: ks:") => 0,
            "Pkey" => 1,
            "Public key" => 2,
            "Certificate" => 3,
            _ => panic!("unexpected storeutl line {line:?}"),
        };
        c[i] += 1;
    }
    c
}

/// "RSA-2048" → "RSA 2048 bits", "EC-P256" → "EC P-256", as the description starts.
fn type_and_size(alg: &str) -> String {
    match alg.split_once('-') {
        Some(("RSA", bits)) => format!("RSA {bits} bits"),
        Some(("EC", curve)) => format!("EC {}-{}", &curve[..1], &curve[1..]),
        _ => panic!("unknown dev key algorithm {alg}"),
    }
}

#[test]
fn listing_names_every_key_with_its_description() {
    let env = ProviderEnv::start(1);
    // The server's catalog as ksc reads it: the subject and key info per key.
    let out = run_ok(env.command(artefact("ksc")).args(["keys", "--json"]));
    let catalog: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ksc keys JSON");
    let catalog = catalog.as_array().expect("an array");
    assert_eq!(catalog.len(), DEV_KEYS.len());

    let text = storeutl(&env, &["ks:"]);
    eprintln!("LISTING\n{text}");
    eprintln!("R\n{}", storeutl(&env, &["-noout", "-r", "ks:"]));
    let lines: Vec<&str> = text.lines().collect();
    for (keyid, alg) in DEV_KEYS {
        let name_line = format!(": Name: ks:{keyid}");
        let at = lines
            .iter()
            .position(|l| {
                l.ends_with(&name_line)
                    && l.split(':')
                        .next()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .unwrap_or_else(|| panic!("no `N: Name: ks:{keyid}` line:\n{text}"));
        let desc = lines.get(at + 1).copied().unwrap_or_default();
        let entry = catalog
            .iter()
            .find(|k| k["keyid"] == *keyid)
            .unwrap_or_else(|| panic!("{keyid} not in ksc keys"));
        let subject = entry["subject"].as_str().expect("subject");
        let info = entry["keyinfo"].as_str().expect("keyinfo");
        assert!(!subject.is_empty() && !info.is_empty(), "{entry}");
        assert!(
            desc.starts_with(&type_and_size(alg))
                && desc.contains(&format!("subject {subject}"))
                && desc.contains(&format!("info \"{info}\"")),
            "{keyid}: description {desc:?}"
        );
    }
    // A listing names the keys, it does not load them.
    assert_eq!(counts(&text), [DEV_KEYS.len(), 0, 0, 0], "{text}");
    assert!(
        text.contains(&format!("Total found: {}", DEV_KEYS.len())),
        "{text}"
    );
    assert_eq!(env.signorders(), 0, "listing spends nothing");
}

#[test]
fn a_key_uri_still_yields_key_public_key_and_certificate() {
    let env = ProviderEnv::start(1);
    let text = storeutl(&env, &["-noout", "ks:key1"]);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "0: Pkey",
            "1: Public key",
            "2: Certificate",
            "Total found: 3"
        ],
        "{text}"
    );
    // The certificate is the key's own.
    let cert = storeutl(&env, &["-certs", "-text", "ks:key1"]);
    assert!(
        cert.contains("-----BEGIN CERTIFICATE-----")
            && cert
                .lines()
                .any(|l| l.trim_start().starts_with("Subject:") && l.ends_with("CN=key1")),
        "{cert}"
    );
    // `-keys` asks the store for private keys only.
    for keyid in ["key2", "key3"] {
        let text = storeutl(&env, &["-noout", "-keys", &format!("ks:{keyid}")]);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            ["0: Pkey", "Total found: 1"],
            "{text}"
        );
    }
}

#[test]
fn listing_with_an_expected_type_yields_those_objects_of_every_key() {
    let env = ProviderEnv::start(1);
    let text = storeutl(&env, &["-noout", "-certs", "ks:"]);
    assert_eq!(counts(&text), [0, 0, 0, DEV_KEYS.len()], "{text}");
    let text = storeutl(&env, &["-noout", "-keys", "ks:"]);
    assert_eq!(counts(&text), [0, DEV_KEYS.len(), 0, 0], "{text}");
}

#[test]
fn recursion_opens_every_listed_name() {
    let env = ProviderEnv::start(1);
    let text = storeutl(&env, &["-noout", "-r", "ks:"]);
    assert_eq!(counts(&text), [DEV_KEYS.len(), 0, 0, 0], "{text}");
    // Each name is opened as ks:<keyid>, one level deeper (indented).
    for object in [
        "  0: Pkey",
        "  1: Public key",
        "  2: Certificate",
        "  Total found: 3",
    ] {
        assert_eq!(
            text.lines().filter(|l| *l == object).count(),
            DEV_KEYS.len(),
            "{object:?}:\n{text}"
        );
    }
    assert_eq!(env.signorders(), 0, "loading keys spends nothing");
}

#[test]
fn searches_by_alias_and_by_subject_narrow_the_listing() {
    let env = ProviderEnv::start(1);
    let text = storeutl(&env, &["-alias", "key2", "ks:"]);
    assert!(
        text.starts_with("0: Name: ks:key2\n") && text.contains("Total found: 1"),
        "{text}"
    );
    // storeutl's name syntax, in the certificate's order; case does not matter.
    let key3 = "/O=KS-DEVSERVER (development only)/CN=key3";
    let text = storeutl(&env, &["-subject", key3, "ks:"]);
    assert!(
        text.starts_with("0: Name: ks:key3\n") && text.contains("Total found: 1"),
        "{text}"
    );
    // With recursion the search applies to each name opened, and so with a type.
    let text = storeutl(&env, &["-noout", "-r", "-subject", key3, "ks:"]);
    assert_eq!(text.matches("  Total found: 3").count(), 1, "{text}");
    let text = storeutl(&env, &["-certs", "-text", "-subject", key3, "ks:"]);
    assert_eq!(counts(&text), [0, 0, 0, 1], "{text}");
    assert!(text.lines().any(|l| l.ends_with("CN=key3")), "{text}");
    // No such subject, or an alias that is not ks:key1's own: nothing found
    // (OpenSSL 3.5 and later print no total when nothing was found).
    let text = storeutl(&env, &["-subject", "/CN=key3", "ks:"]);
    assert_eq!(counts(&text), [0; 4], "{text}");
    let text = storeutl(&env, &["-alias", "key2", "ks:key1"]);
    assert_eq!(counts(&text), [0; 4], "{text}");
    assert_eq!(env.signorders(), 0);
}

#[test]
fn an_unknown_or_malformed_key_uri_is_a_clear_error() {
    let env = ProviderEnv::start(1);
    let err = run_fail(&mut env.openssl(&[
        "storeutl",
        "-provider",
        "keyserver",
        "-provider",
        "default",
        "ks:key99",
    ]));
    let line = keyserver_error_line(&err);
    assert!(
        line.contains("key99") && line.contains("key1"),
        "names the key and the known ones: {line}"
    );
    let err = run_fail(&mut env.openssl(&[
        "storeutl",
        "-provider",
        "keyserver",
        "-provider",
        "default",
        "-r",
        "ks:key1/x",
    ]));
    assert!(keyserver_error_line(&err).contains("malformed"), "{err}");
}
