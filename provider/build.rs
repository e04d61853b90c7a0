//! Generates the OpenSSL provider ABI (types, function ids, parameter names)
//! from the installed headers and compiles the small C shim that calls the
//! core's `va_list` error function.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rerun-if-env-changed=KS_OPENSSL_INCLUDE_DIR");

    // Headers: an explicit directory (used by the OpenSSL 3.5/4.0 matrix), else
    // pkg-config's libcrypto. Nothing is linked: the provider only ever calls
    // OpenSSL through the function pointers the core hands it.
    let include_dirs: Vec<PathBuf> = match env::var_os("KS_OPENSSL_INCLUDE_DIR") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => match pkg_config::Config::new()
            .atleast_version("3.0.7")
            .cargo_metadata(false)
            .probe("libcrypto")
        {
            Ok(lib) => lib.include_paths,
            Err(e) => panic!(
                "OpenSSL >= 3.0.7 development headers not found ({e}); \
                 install them with: apt-get install libssl-dev pkg-config"
            ),
        },
    };

    let mut builder = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .allowlist_type("OSSL_.*")
        .allowlist_var("OSSL_.*")
        .allowlist_var("OPENSSL_VERSION_.*")
        .allowlist_var("EVP_PKEY_.*")
        .allowlist_var("RSA_PSS_SALTLEN_.*")
        .allowlist_var("RSA_.*_PADDING")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false);
    for dir in &include_dirs {
        builder = builder.clang_arg(format!("-I{}", dir.display()));
    }
    let bindings = builder
        .generate()
        .expect("bindgen over the OpenSSL core headers failed (is libclang-dev installed?)");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    bindings
        .write_to_file(out.join("ossl.rs"))
        .expect("writing the generated bindings");

    let mut shim = cc::Build::new();
    shim.file("csrc/shim.c").warnings(true).extra_warnings(true);
    for dir in &include_dirs {
        shim.include(dir);
    }
    shim.compile("ks_provider_shim");

    // The provider stays mapped after OpenSSL unloads it at exit, so no code
    // of ours can be called into an unmapped library (e.g. from atexit or TLS
    // destructors of threads the HTTP stack created).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    // Export only the provider entry point from the shared object.
    println!("cargo:rustc-cdylib-link-arg=-Wl,--exclude-libs,ALL");
}
