#!/usr/bin/env bash
# Builds the release artefacts and installs them:
#   keyserver.so      -> OpenSSL's MODULESDIR (`openssl version -m`), where `-provider keyserver` finds it
#   libpkcs11ks.so    -> <libdir>/pkcs11/ (the system PKCS#11 module directory)
#   keyserver.module  -> <prefix>/share/p11-kit/modules/ (p11-kit), pointing at the installed module
#   ksc               -> <prefix>/bin/, its man page and bash/zsh/fish completions -> <prefix>/share/
#   openssl-ks.cnf, openssl-pkcs11-engine.cnf, ksc.conf
#                     -> <sysconfdir>/keyserver-signing/, with the installed paths filled in;
#                        a config you edited (it differs from what an install of this
#                        script wrote, recorded in .installed-sums beside it) is kept, and
#                        the new one is written beside it as <name>.new; an unedited one
#                        from an older version is updated
#
# Usage: scripts/install.sh [options]
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'TXT'

Options:
  --prefix DIR      installation prefix (default /usr); ksc goes to DIR/bin
  --destdir DIR     stage everything under DIR (for packagers and tests); the
                    paths written into the installed files stay the final
                    ones, without DIR
  --modulesdir DIR  OpenSSL provider directory (default: `openssl version -m`
                    with prefix /usr, else PREFIX/lib/ossl-modules, which then
                    needs OPENSSL_MODULES or the config's absolute module path)
  --libdir DIR      library directory (default: PREFIX/lib/<multiarch triplet>
                    when it exists, else PREFIX/lib)
  --sysconfdir DIR  configuration directory (default: /etc with prefix /usr,
                    else PREFIX/etc)
  --target-dir DIR  Cargo target directory (default: $CARGO_TARGET_DIR, else
                    ./target of the repository)
  --profile NAME    build profile to install: release (default) or debug
  --no-build        install what the target directory already holds
  --uninstall       remove what an install with the same options put in place;
                    a config that differs from what it installed (your edits)
                    is kept, and so is its directory
  --dry-run         print what would be done, change nothing
  -h, --help        this text

Examples:
  sudo scripts/install.sh
  scripts/install.sh --destdir "$PWD/pkgroot"              # stage for a package
  scripts/install.sh --prefix "$HOME/.local" && export OPENSSL_MODULES=$HOME/.local/lib/ossl-modules
  sudo scripts/install.sh --uninstall
TXT
}

prefix=/usr destdir="" modulesdir="" libdir="" sysconfdir="" build=1 uninstall=0 dry=0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target} profile=release

need_arg() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then echo "install: $1 needs a value (see --help)" >&2; exit 2; fi
}
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) need_arg "$@"; prefix=$2; shift 2 ;;
    --destdir) need_arg "$@"; destdir=$2; shift 2 ;;
    --modulesdir) need_arg "$@"; modulesdir=$2; shift 2 ;;
    --libdir) need_arg "$@"; libdir=$2; shift 2 ;;
    --sysconfdir) need_arg "$@"; sysconfdir=$2; shift 2 ;;
    --target-dir) need_arg "$@"; target_dir=$2; shift 2 ;;
    --profile) need_arg "$@"; profile=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --uninstall) uninstall=1; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $profile in
  release) cargo_profile=(--release) ;;
  debug|dev) profile=debug; cargo_profile=() ;;
  *) echo "install: --profile must be release or debug, not $profile" >&2; exit 2 ;;
esac
case $prefix in /*) ;; *) echo "install: --prefix must be an absolute path" >&2; exit 2 ;; esac
if [ -n "$destdir" ]; then
  mkdir -p "$destdir" && destdir=$(cd "$destdir" && pwd)
fi

command -v openssl >/dev/null || { echo "install: openssl not found; install the openssl package" >&2; exit 1; }
if [ -z "$libdir" ]; then
  triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine 2>/dev/null || echo "")
  if [ -n "$triplet" ] && [ -d "$prefix/lib/$triplet" ]; then libdir=$prefix/lib/$triplet; else libdir=$prefix/lib; fi
fi
if [ -z "$modulesdir" ]; then
  if [ "$prefix" = /usr ]; then
    modulesdir=$(openssl version -m | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
    [ -n "$modulesdir" ] || { echo "install: could not read MODULESDIR from 'openssl version -m'; pass --modulesdir" >&2; exit 1; }
  else
    modulesdir=$libdir/ossl-modules
  fi
fi
if [ -z "$sysconfdir" ]; then
  if [ "$prefix" = /usr ]; then sysconfdir=/etc; else sysconfdir=$prefix/etc; fi
fi
bindir=$prefix/bin
pkcs11dir=$libdir/pkcs11
p11kitdir=$prefix/share/p11-kit/modules
man1dir=$prefix/share/man/man1
bashcompdir=$prefix/share/bash-completion/completions
zshcompdir=$prefix/share/zsh/vendor-completions
fishcompdir=$prefix/share/fish/vendor_completions.d
confdir=$sysconfdir/keyserver-signing
enginesdir=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')

run() { if [ $dry -eq 1 ]; then echo "+ $*"; else "$@"; fi; }

targets=(
  "$modulesdir/keyserver.so"
  "$pkcs11dir/libpkcs11ks.so"
  "$p11kitdir/keyserver.module"
  "$bindir/ksc"
  "$man1dir/ksc.1"
  "$bashcompdir/ksc"
  "$zshcompdir/_ksc"
  "$fishcompdir/ksc.fish"
  "$confdir/openssl-ks.cnf"
  "$confdir/openssl-pkcs11-engine.cnf"
  "$confdir/ksc.conf"
)

if [ $build -eq 1 ] && [ $uninstall -eq 0 ]; then
  command -v cargo >/dev/null || { echo "install: cargo not found; install Rust 1.85+ (https://rustup.rs) or use --no-build" >&2; exit 1; }
  echo "install: building ($profile)" >&2
  run cargo build "${cargo_profile[@]}" --locked --manifest-path "$root/Cargo.toml" --target-dir "$target_dir" \
    -p ks-provider -p ks-pkcs11 -p ks-cli
fi
bin=$target_dir/$profile
for f in libkeyserver.so libpkcs11ks.so ksc; do
  [ $dry -eq 1 ] || [ $uninstall -eq 1 ] || [ -f "$bin/$f" ] || { echo "install: $bin/$f is missing; build it or run without --no-build" >&2; exit 1; }
done

# Writes FILE from stdin (or just says so with --dry-run).
write_file() {
  if [ $dry -eq 1 ]; then echo "+ write $1"; cat >/dev/null; else cat >"$1"; chmod 0644 "$1"; fi
}

# conf/openssl-ks.cnf with the provider's `module` set to the installed path:
# replaces the `module = ...` line of the keyserver provider's section, or adds
# one right after the section header when the file has none.
provider_cnf() {
  awk -v module="$modulesdir/keyserver.so" '
    /^[[:space:]]*keyserver[[:space:]]*=/ && sect == "" {
      s = $0; sub(/^[^=]*=[[:space:]]*/, "", s); sub(/[[:space:]].*$/, "", s); sect = s
    }
    /^[[:space:]]*\[/ {
      if (in_ks && !done) { print "module = " module; done = 1 }
      name = $0; gsub(/[][[:space:]]/, "", name); in_ks = (sect != "" && name == sect)
      print; next
    }
    in_ks && /^[[:space:]]*module[[:space:]]*=/ { print "module = " module; done = 1; next }
    { print }
    END {
      if (in_ks && !done) { print "module = " module; done = 1 }
      if (!done) { print "install: conf/openssl-ks.cnf has no keyserver provider section" > "/dev/stderr"; exit 1 }
    }
  ' "$root/conf/openssl-ks.cnf"
}

engine_sed=(-e "s|^MODULE_PATH *=.*|MODULE_PATH = $pkcs11dir/libpkcs11ks.so|")
for e in "$enginesdir/pkcs11.so" "$enginesdir/libpkcs11.so"; do
  if [ -n "$enginesdir" ] && [ -f "$e" ]; then engine_sed+=(-e "s|^dynamic_path *=.*|dynamic_path = $e|"); break; fi
done

# Prints the content this version installs as <confdir>/NAME.
conf_content() {
  case $1 in
    openssl-pkcs11-engine.cnf) sed "${engine_sed[@]}" "$root/conf/openssl-pkcs11-engine.cnf" ;;
    openssl-ks.cnf) provider_cnf ;;
    ksc.conf) cat "$root/conf/ksc.conf" ;;
  esac
}
conf_names=(openssl-ks.cnf openssl-pkcs11-engine.cnf ksc.conf)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in "${conf_names[@]}"; do conf_content "$name" >"$tmp/$name"; done

# What each config was when an install wrote it: an unchanged one may be replaced or
# removed, a changed one is the admin's (the way dpkg treats conffiles).
sums_file=$confdir/.installed-sums
recorded_sum() {
  if [ -f "$destdir$sums_file" ]; then awk -v n="$1" '$2 == n { print $1 }' "$destdir$sums_file"; fi
}
# True when the config at PATH is, byte for byte, what this version installs as NAME or
# what an earlier install recorded for NAME.
unedited() {
  local name=$1 path=$2 recorded
  cmp -s "$tmp/$name" "$path" && return 0
  recorded=$(recorded_sum "$name")
  [ -n "$recorded" ] && [ "$recorded" = "$(sha256sum <"$path" | cut -d' ' -f1)" ]
}

if [ $uninstall -eq 1 ]; then
  for t in "${targets[@]}"; do
    name=${t##*/}
    if [ "$t" = "$confdir/$name" ]; then
      # A <name>.new beside a kept config is the one an install wrote.
      if [ -e "$destdir$t.new" ] && cmp -s "$tmp/$name" "$destdir$t.new"; then
        run rm -f "$destdir$t.new"; [ $dry -eq 1 ] || echo "removed $destdir$t.new" >&2
      fi
      if [ -e "$destdir$t" ] && ! unedited "$name" "$destdir$t"; then
        echo "install: kept $destdir$t: you edited it (it differs from what was installed); delete it yourself if you no longer need it" >&2
        continue
      fi
    fi
    if [ -e "$destdir$t" ]; then run rm -f "$destdir$t"; [ $dry -eq 1 ] || echo "removed $destdir$t" >&2; fi
  done
  if [ -e "$destdir$sums_file" ]; then run rm -f "$destdir$sums_file"; fi
  # Only directories this script alone fills; never the shared ones.
  for d in "$destdir$confdir" "$destdir$pkcs11dir"; do
    if [ -d "$d" ]; then run rmdir --ignore-fail-on-non-empty "$d"; fi
  done
  exit 0
fi

run install -d "$destdir$modulesdir" "$destdir$pkcs11dir" "$destdir$p11kitdir" "$destdir$bindir" "$destdir$confdir"
run install -m 0755 "$bin/libkeyserver.so" "$destdir$modulesdir/keyserver.so"
run install -m 0755 "$bin/libpkcs11ks.so" "$destdir$pkcs11dir/libpkcs11ks.so"
run install -m 0755 "$bin/ksc" "$destdir$bindir/ksc"
# The man page and completions come from ksc's own command-line definition.
run install -d "$destdir$man1dir" "$destdir$bashcompdir" "$destdir$zshcompdir" "$destdir$fishcompdir"
if [ $dry -eq 1 ]; then
  echo "+ ksc man / ksc completions bash|zsh|fish"
else
  "$bin/ksc" man | write_file "$destdir$man1dir/ksc.1"
  "$bin/ksc" completions bash | write_file "$destdir$bashcompdir/ksc"
  "$bin/ksc" completions zsh | write_file "$destdir$zshcompdir/_ksc"
  "$bin/ksc" completions fish | write_file "$destdir$fishcompdir/ksc.fish"
fi
sed "s|^module:.*|module: $pkcs11dir/libpkcs11ks.so|" "$root/conf/p11-kit/keyserver.module" \
  | write_file "$destdir$p11kitdir/keyserver.module"
# A config the admin edited is never overwritten: the new one goes beside it. An unedited
# one (this version's, or an earlier install's as recorded) is replaced.
kept=() sums=()
for name in "${conf_names[@]}"; do
  dest=$destdir$confdir/$name
  if [ -e "$dest" ] && ! unedited "$name" "$dest"; then
    write_file "$dest.new" <"$tmp/$name"
    kept+=("$confdir/$name")
    # Still the earlier install's sum: the file stays "edited" until the admin replaces it.
    old_sum=$(recorded_sum "$name")
    [ -z "$old_sum" ] || sums+=("$old_sum  $name")
    echo "install: kept $dest: you edited it (it differs from what was installed); the new one is $dest.new (compare: diff $dest $dest.new)" >&2
  else
    write_file "$dest" <"$tmp/$name"
    sums+=("$(sha256sum <"$tmp/$name" | cut -d' ' -f1)  $name")
  fi
done
if [ ${#sums[@]} -gt 0 ]; then printf '%s\n' "${sums[@]}" | write_file "$destdir$sums_file"; fi

done_word=installed
[ $dry -eq 1 ] && done_word="would install"
for t in "${targets[@]}"; do
  case " ${kept[*]} " in
    *" $t "*) echo "kept $destdir$t (new one: $destdir$t.new)" >&2 ;;
    *) echo "$done_word $destdir$t" >&2 ;;
  esac
done
if [ "$prefix" != /usr ]; then
  echo "install: keyserver.so is not in OpenSSL's default modules directory: export OPENSSL_MODULES=$modulesdir" >&2
  echo "install: (or use OPENSSL_CONF=$confdir/openssl-ks.cnf, which names it by absolute path)" >&2
fi
