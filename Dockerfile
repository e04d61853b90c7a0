#
# Build image for keyserver-signing: the tutorial's "libpkcs11ks" image.
#
#   docker build -t libpkcs11ks .
#   docker run --rm -v "$PWD/output:/output" libpkcs11ks
#
# The container copies the built libraries (libpkcs11ks.so, keyserver.so) and
# ksc into the mounted /output, then runs the default test: the tutorial's
# whole flow (scripts/signandvalidate.sh) against the bundled dev KeyServer on
# the container's loopback. Nothing is fetched at run time.
#
#   docker build --target test .    # also runs the project's test command (scripts/test.sh)
#
# Base images are pinned to exact versions. To pin digests as well:
#   docker build --build-arg RUST_IMAGE=rust:1.95.0-slim-bookworm@sha256:<digest> \
#                --build-arg DEBIAN_IMAGE=debian:12.12-slim@sha256:<digest> -t libpkcs11ks .
# Builder and runtime are the same Debian release (bookworm, OpenSSL 3.0), so
# keyserver.so matches the runtime's libcrypto.

ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG DEBIAN_IMAGE=debian:12.12-slim

# ---------------------------------------------------------------- build ----
FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The build packages, from the same script CI uses (its own layer: cached
# until the script changes).
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
# Release build of everything the tutorial needs, then the install layout
# staged by the same install script users run.
RUN cargo build --release --locked -p ks-cli -p ks-provider -p ks-pkcs11 -p ks-devserver
RUN bash scripts/install.sh --no-build --destdir /staging \
 && install -d /staging/opt/keyserver-signing/target/release \
 && cp target/CACHEDIR.TAG /staging/opt/keyserver-signing/target/ \
 && cp target/release/ksc target/release/ks-devserver target/release/libkeyserver.so \
       target/release/libpkcs11ks.so /staging/opt/keyserver-signing/target/release/ \
 && cp -r scripts conf /staging/opt/keyserver-signing/

# ----------------------------------------------------------------- test ----
# Optional (docker build --target test .): the project's test command, as CI runs it.
FROM build AS test
RUN rustup component add rustfmt clippy \
 && bash scripts/test.sh

# -------------------------------------------------------------- runtime ----
FROM ${DEBIAN_IMAGE} AS runtime
# What the tutorial uses at run time: openssl, pkcs11-tool (opensc) and
# libp11's engine; ca-certificates for a real KeyServer's TLS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openssl opensc libengine-pkcs11-openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# ksc in /usr/bin, keyserver.so in OpenSSL's modules directory, libpkcs11ks.so
# in the PKCS#11 module directory, the p11-kit module file, the configs in
# /etc/keyserver-signing, and the tutorial in /opt/keyserver-signing.
COPY --from=build /staging/ /
WORKDIR /opt/keyserver-signing
VOLUME ["/output"]
# Copy the artefacts out, then the default test: the tutorial on the dev
# KeyServer (loopback only), leaving its signatures in /output/tutorial.
CMD ["bash", "-c", "set -e; rel=/opt/keyserver-signing/target/release; cp \"$rel/libpkcs11ks.so\" \"$rel/ksc\" /output/; cp \"$rel/libkeyserver.so\" /output/keyserver.so; mkdir -p /output/conf; cp /etc/keyserver-signing/* /output/conf/; echo \"copied libpkcs11ks.so, keyserver.so, ksc and conf/ to /output\"; exec bash /opt/keyserver-signing/scripts/signandvalidate.sh --target-dir /opt/keyserver-signing/target --no-build --no-install --out /output/tutorial"]
