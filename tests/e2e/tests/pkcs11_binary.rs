//! The shipped module: no OpenSSL linked in, only `C_*` symbols exported.

use std::process::Command;

use ks_e2e::pkcs11_support::{module_path, run_ok, tool};

#[test]
fn module_does_not_link_openssl() {
    let module = module_path();
    let out = run_ok(Command::new(tool("ldd", "libc-bin")).arg(&module));
    let deps = String::from_utf8_lossy(&out.stdout);
    assert!(deps.contains("libc.so"), "ldd output looks wrong:\n{deps}");
    for lib in ["libcrypto", "libssl"] {
        assert!(
            !deps.contains(lib),
            "{} links {lib}:\n{deps}",
            module.display()
        );
    }
}

#[test]
fn module_exports_only_pkcs11_functions() {
    let module = module_path();
    let out = run_ok(
        Command::new(tool("nm", "binutils"))
            .args(["-D", "--defined-only"])
            .arg(&module),
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    let symbols: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let foreign: Vec<&&str> = symbols.iter().filter(|s| !s.starts_with("C_")).collect();
    assert!(
        foreign.is_empty(),
        "non-PKCS#11 symbols exported: {foreign:?}"
    );
    for required in [
        "C_GetFunctionList",
        "C_GetInterfaceList",
        "C_GetInterface",
        "C_Initialize",
        "C_Sign",
        "C_SignMessage",
        "C_VerifyMessageNext",
    ] {
        assert!(symbols.contains(&required), "{required} is not exported");
    }
}
