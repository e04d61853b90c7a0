//! Remote-signing core shared by the OpenSSL provider and the PKCS#11 module.
