//! keyserver.so: an OpenSSL 3 provider over the remote-signing core.
