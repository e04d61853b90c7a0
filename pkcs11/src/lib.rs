//! libpkcs11ks.so: a PKCS#11 module over the remote-signing core.
