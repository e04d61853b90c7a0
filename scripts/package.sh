#!/usr/bin/env bash
# Builds the Debian package target/debian/keyserver-signing_<version>-1_<arch>.deb
# with cargo-deb:
#   ksc                -> /usr/bin/, its man page and bash/zsh/fish completions -> /usr/share/
#   keyserver.so       -> OpenSSL's modules directory (`openssl version -m`, e.g.
#                         /usr/lib/x86_64-linux-gnu/ossl-modules)
#   libpkcs11ks.so     -> /usr/lib/<multiarch>/pkcs11/
#   keyserver.module   -> /usr/share/p11-kit/modules/
#   ksc.conf, openssl-ks.cnf, openssl-pkcs11-engine.cnf
#                      -> /etc/keyserver-signing/ (conffiles: dpkg keeps edits on upgrade)
# The files and the paths written into them come from scripts/install.sh
# --destdir (one place knows the layout); cargo-deb packages that staged tree
# with the metadata in common/cli/Cargo.toml ([package.metadata.deb]).
#
# Usage: bash scripts/package.sh [options]
set -euo pipefail

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'TXT'

Options:
  --no-build          package what the target directory already holds
  --deb-version VER   the package's version (default: Cargo's, e.g. 0.1.0-1)
  --profile NAME      release (default) or debug: which build to package
                      (debug is for quick tests of the packaging only)
  --fast              lighter compression (a larger .deb, built sooner)
  -h, --help          this text

Needs Debian or Ubuntu (dpkg-deb, dpkg-shlibdeps from dpkg-dev) and cargo-deb:
`bash scripts/deps.sh package` installs both (cargo-deb, pinned, into
target/tools/bin). Prints the .deb's path on stdout; each run replaces the
.deb files already in target/debian (cargo-deb clears them).
TXT
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
build=1 deb_version="" profile=release fast=0
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) build=0; shift ;;
    --fast) fast=1; shift ;;
    --deb-version)
      if [ $# -lt 2 ] || [ -z "$2" ]; then echo "package: --deb-version needs a value (see --help)" >&2; exit 2; fi
      deb_version=$2; shift 2 ;;
    --profile)
      if [ $# -lt 2 ] || [ -z "$2" ]; then echo "package: --profile needs a value (see --help)" >&2; exit 2; fi
      profile=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "package: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $profile in
  release) cargo_profile=(--release) ;;
  debug) cargo_profile=() ;;
  *) echo "package: --profile must be release or debug, not $profile" >&2; exit 2 ;;
esac
# A Debian version: digits first, then letters, digits and . + ~ - only.
if [ -n "$deb_version" ] && ! [[ $deb_version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]]; then
  echo "package: --deb-version '$deb_version' is not a Debian version (e.g. 0.1.0-2)" >&2
  exit 2
fi

for tool in dpkg-deb dpkg-architecture dpkg-shlibdeps; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if ! command -v dpkg >/dev/null 2>&1; then
      echo "package: this is not Debian or Ubuntu (no dpkg): a .deb cannot be built or used here; install with scripts/install.sh instead" >&2
    else
      echo "package: $tool is missing; install dpkg-dev (bash scripts/deps.sh package does)" >&2
    fi
    exit 1
  fi
done

# Where `scripts/deps.sh package` installs it, else on PATH.
cargo_deb=$target_dir/tools/bin/cargo-deb
if [ ! -x "$cargo_deb" ]; then
  cargo_deb=$(command -v cargo-deb 2>/dev/null) || {
    echo "package: cargo-deb not found; get it with: bash scripts/deps.sh package" >&2
    echo "package: (cargo install cargo-deb --locked, pinned, into $target_dir/tools/bin)" >&2
    exit 1
  }
fi

if [ $build -eq 1 ]; then
  command -v cargo >/dev/null || { echo "package: cargo not found; install Rust 1.85+ (https://rustup.rs) or use --no-build" >&2; exit 1; }
  echo "package: building ($profile)" >&2
  cargo build "${cargo_profile[@]}" --locked --manifest-path "$root/Cargo.toml" --target-dir "$target_dir" \
    -p ks-provider -p ks-pkcs11 -p ks-cli
fi

# The staged tree: exactly what `install.sh` would put on this system.
# cargo-deb reads it as target/release/deb-stage (see common/cli/Cargo.toml).
stage=$target_dir/release/deb-stage
rm -rf "$stage"
mkdir -p "$stage"
bash "$root/scripts/install.sh" --destdir "$stage" --prefix /usr --no-build \
  --target-dir "$target_dir" --profile "$profile" 2>"$target_dir/release/deb-stage.log" || {
  cat "$target_dir/release/deb-stage.log" >&2
  echo "package: staging with scripts/install.sh --destdir failed (above)" >&2
  exit 1
}
# install.sh's record of what it wrote: dpkg keeps its own (conffiles), not shipped.
rm -f "$stage/etc/keyserver-signing/.installed-sums"

deb_args=(--no-build --manifest-path "$root/common/cli/Cargo.toml")
[ -z "$deb_version" ] || deb_args+=(--deb-version "$deb_version")
[ $fast -eq 0 ] || deb_args+=(--fast)
echo "package: $cargo_deb ${deb_args[*]}" >&2
out=$(CARGO_TARGET_DIR=$target_dir "$cargo_deb" deb "${deb_args[@]}") || {
  echo "package: cargo-deb failed (above)" >&2
  exit 1
}
deb=$(printf '%s\n' "$out" | tail -n 1)
[ -f "$deb" ] || { echo "package: cargo-deb did not say where the .deb is (it printed: $out)" >&2; exit 1; }

# Every staged file must be in the package: a path outside the asset globs
# (e.g. an OpenSSL whose modules directory is not under /usr/lib) would
# otherwise be left out silently.
# (cargo-deb gzips man pages: ksc.1 is usr/share/man/man1/ksc.1.gz.)
missing=$(comm -23 \
  <(cd "$stage" && find . -type f | sed -e 's|^\./||' -e 's|^\(usr/share/man/.*\.[0-9]\)$|\1.gz|' | sort) \
  <(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's|^\./||' | grep -v '/$' | sort))
if [ -n "$missing" ]; then
  echo "package: these installed files are not in $deb (extend the assets in common/cli/Cargo.toml):" >&2
  printf '  %s\n' $missing >&2
  exit 1
fi
echo "package: built $deb" >&2
echo "$deb"
