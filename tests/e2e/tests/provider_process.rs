//! Process-level behaviour: a forked child signs correctly with a key loaded
//! by its parent, and a signing command runs clean under valgrind (no invalid
//! reads or writes, no crash at unload/exit).

use std::process::Command;

use ks_e2e::provider_support::{libcrypto_cc_args, run_ok, tool, ProviderEnv};

/// A small libcrypto program: loads ks:<key> with the keyserver provider,
/// signs in the parent, forks, signs in the child (with the inherited key and
/// with a freshly loaded one), then signs again in the parent.
const FORK_PROGRAM: &str = r#"
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>

static EVP_PKEY *load(const char *uri) {
    EVP_PKEY *k = NULL;
    OSSL_STORE_CTX *s = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
    if (s == NULL) return NULL;
    OSSL_STORE_expect(s, OSSL_STORE_INFO_PKEY);
    while (k == NULL && !OSSL_STORE_eof(s)) {
        OSSL_STORE_INFO *i = OSSL_STORE_load(s);
        if (i != NULL && OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_PKEY)
            k = OSSL_STORE_INFO_get1_PKEY(i);
        OSSL_STORE_INFO_free(i);
    }
    OSSL_STORE_close(s);
    return k;
}

static int sign_verify(EVP_PKEY *k, const char *who) {
    unsigned char sig[1024];
    size_t len = sizeof(sig);
    static const unsigned char msg[] = "message signed around fork()";
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL
        && EVP_DigestSignInit_ex(c, NULL, "SHA256", NULL, NULL, k, NULL) == 1
        && EVP_DigestSign(c, sig, &len, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(c);
    if (ok) {
        c = EVP_MD_CTX_new();
        ok = c != NULL
            && EVP_DigestVerifyInit_ex(c, NULL, "SHA256", NULL, NULL, k, NULL) == 1
            && EVP_DigestVerify(c, sig, len, msg, sizeof(msg)) == 1;
        EVP_MD_CTX_free(c);
    }
    printf("%s %s\n", who, ok ? "ok" : "FAILED");
    fflush(stdout);
    if (!ok) ERR_print_errors_fp(stderr);
    return ok;
}

int main(int argc, char **argv) {
    OSSL_PROVIDER *ks, *def;
    EVP_PKEY *k;
    pid_t pid;
    int st = 0, ok;

    if (argc != 2) return 2;
    ks = OSSL_PROVIDER_load(NULL, "keyserver");
    def = OSSL_PROVIDER_load(NULL, "default");
    if (ks == NULL || def == NULL) { ERR_print_errors_fp(stderr); return 3; }
    k = load(argv[1]);
    if (k == NULL) { ERR_print_errors_fp(stderr); return 4; }
    if (!sign_verify(k, "parent-before")) return 5;
    pid = fork();
    if (pid < 0) return 6;
    if (pid == 0) {
        EVP_PKEY *k2;
        int cok = sign_verify(k, "child");
        k2 = load(argv[1]);
        cok = cok && k2 != NULL && sign_verify(k2, "child-reloaded");
        EVP_PKEY_free(k2);
        EVP_PKEY_free(k);
        _exit(cok ? 0 : 7);
    }
    if (waitpid(pid, &st, 0) != pid) return 8;
    ok = sign_verify(k, "parent-after");
    EVP_PKEY_free(k);
    OSSL_PROVIDER_unload(ks);
    OSSL_PROVIDER_unload(def);
    return (ok && WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : 9;
}
"#;

#[test]
fn a_forked_child_signs_correctly() {
    let env = ProviderEnv::start(10);
    let src = env.write("fork.c", FORK_PROGRAM);
    let bin = env.path("fork-test");
    let cc = tool("cc", "gcc");
    run_ok(
        Command::new(cc)
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .args(libcrypto_cc_args()),
    );
    for keyid in ["key1", "key4"] {
        let before = env.signorders();
        let mut cmd = env.command(&bin);
        cmd.arg(format!("ks:{keyid}"));
        let out = run_ok(&mut cmd);
        let text = String::from_utf8_lossy(&out.stdout);
        for who in [
            "parent-before ok",
            "child ok",
            "child-reloaded ok",
            "parent-after ok",
        ] {
            assert!(
                text.contains(who),
                "{keyid}: {who} missing:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(
            env.signorders(),
            before + 4,
            "{keyid}: four signatures, four sign orders"
        );
    }
}

#[test]
fn signing_under_valgrind_has_no_invalid_memory_access() {
    let env = ProviderEnv::start(2);
    env.write("data", b"checked by valgrind\n");
    let valgrind = tool("valgrind", "valgrind");
    let openssl = ks_e2e::provider_support::openssl();
    for keyid in ["key1", "key4"] {
        let uri = format!("ks:{keyid}");
        let sig = format!("{keyid}.sig");
        let mut cmd = env.command(&valgrind);
        cmd.args(["--leak-check=no", "--trace-children=no", "--error-limit=no"])
            .arg(&openssl)
            .args([
                "dgst",
                "-provider",
                "keyserver",
                "-sign",
                &uri,
                "-sha256",
                "-out",
                &sig,
                "data",
            ]);
        let out = run_ok(&mut cmd);
        let log = String::from_utf8_lossy(&out.stderr);
        for bad in [
            "Invalid read",
            "Invalid write",
            "Invalid free",
            "Mismatched free",
            "Process terminating",
            "Jump to the invalid address",
        ] {
            assert!(
                !log.contains(bad),
                "{keyid}: valgrind reports {bad}:\n{log}"
            );
        }
        assert!(log.contains("ERROR SUMMARY"), "valgrind ran: {log}");
        let public = env.public_key(keyid);
        let v = env.openssl_ok(&[
            "dgst",
            "-sha256",
            "-verify",
            &public.to_string_lossy(),
            "-signature",
            &sig,
            "data",
        ]);
        assert!(String::from_utf8_lossy(&v.stdout).contains("Verified OK"));
    }
}
