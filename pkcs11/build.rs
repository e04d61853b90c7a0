//! Restricts the cdylib's dynamic symbol table to the PKCS#11 entry points
//! (`C_*`) and keeps the module mapped after `dlclose`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = match std::env::var_os("OUT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => panic!("cargo did not set OUT_DIR"),
    };
    let script = out_dir.join("pkcs11ks.map");
    let text = "PKCS11KS {\n  global:\n    C_*;\n  local:\n    *;\n};\n";
    if let Err(e) = std::fs::write(&script, text) {
        panic!("cannot write {}: {e}", script.display());
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
            script.display()
        );
        // Host processes may dlclose the module while thread-local destructors or
        // atexit handlers still point into it: never unmap it.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
}
