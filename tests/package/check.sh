#!/usr/bin/env bash
# The Debian package, installed for real: run as root in a throwaway root (the
# clean room's last stage, scripts/cleanroom.sh), never on a machine you care
# about — it installs, upgrades and purges the keyserver-signing package.
#
#   1. builds the package twice with scripts/package.sh: the version Cargo
#      gives, and an upgrade (<version>+upgrade) whose ksc.conf differs
#   2. apt-get install ./<deb>; uses what it installed: ksc --version,
#      `openssl list -providers -provider keyserver` without OPENSSL_MODULES,
#      pkcs11-tool --module <installed libpkcs11ks.so> listing the dev
#      KeyServer's keys, one signature through the installed provider against
#      the dev KeyServer, verified with the key's certificate
#   3. edits /etc/keyserver-signing/ksc.conf and upgrades, unattended
#      (DEBIAN_FRONTEND=noninteractive, --force-confold): the edit survives,
#      the new config is ksc.conf.dpkg-dist, no question asked
#   4. dpkg -r: programs and libraries gone, configs kept; dpkg -P: configs gone
#
# Each step prints one line; the first failure stops it with a message.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
pkg=keyserver-signing

step() { printf 'package-check: %s\n' "$*" >&2; }
die() { printf 'package-check: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (it installs and removes a package): run it in the clean room (scripts/cleanroom.sh --package-only)"
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q installed; then
  die "$pkg is already installed here; this check needs a root without it (it purges it at the end)"
fi

step "deps: scripts/deps.sh tutorial (openssl, pkcs11-tool) and package (dpkg-dev, cargo-deb)"
bash scripts/deps.sh tutorial >&2 || die "scripts/deps.sh tutorial failed"
bash scripts/deps.sh package >&2 || die "scripts/deps.sh package failed"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step "build: scripts/package.sh (release) and the dev KeyServer"
deb1=$(bash scripts/package.sh) || die "scripts/package.sh failed"
# cargo-deb clears target/debian/*.deb on each run: keep this one aside.
cp "$deb1" "$work/" && deb1=$work/$(basename "$deb1")
cargo build --release --locked -q -p ks-devserver >&2 || die "cargo build -p ks-devserver failed"
version=$(dpkg-deb -f "$deb1" Version)
upgrade_version=$version+upgrade
# The upgrade ships a different ksc.conf, as a new version with a changed
# default would: dpkg then has to choose between the admin's and the package's.
cp conf/ksc.conf "$work/ksc.conf.orig"
printf '# (changed in %s)\n' "$upgrade_version" >>conf/ksc.conf
deb2=$(bash scripts/package.sh --no-build --deb-version "$upgrade_version") || { cp "$work/ksc.conf.orig" conf/ksc.conf; die "scripts/package.sh --deb-version failed"; }
cp "$work/ksc.conf.orig" conf/ksc.conf
step "built $deb1 and $deb2"

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "$deb1" </dev/null >&2 || die "apt-get install $deb1 failed"
[ "$(dpkg-query -W -f='${Version}' "$pkg")" = "$version" ] || die "dpkg does not list $pkg $version as installed"
step "installed $pkg $version with apt-get install (Depends: $(dpkg-deb -f "$deb1" Depends))"

modulesdir=$(openssl version -m | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
module=/usr/lib/$multiarch/pkcs11/libpkcs11ks.so
for f in /usr/bin/ksc "$modulesdir/keyserver.so" "$module" /usr/share/p11-kit/modules/keyserver.module \
  /usr/share/man/man1/ksc.1.gz /usr/share/bash-completion/completions/ksc \
  /etc/keyserver-signing/ksc.conf /etc/keyserver-signing/openssl-ks.cnf /etc/keyserver-signing/openssl-pkcs11-engine.cnf; do
  [ -f "$f" ] || die "$f is not installed"
done
[ "$(command -v ksc)" = /usr/bin/ksc ] || die "ksc on PATH is $(command -v ksc), not /usr/bin/ksc"
ksc --version | grep -q "${version%%-*}" || die "ksc --version does not say ${version%%-*}: $(ksc --version)"
step "ksc --version: $(ksc --version)"

env -u OPENSSL_MODULES -u OPENSSL_CONF openssl list -providers -provider keyserver >"$work/providers" 2>&1 \
  || { cat "$work/providers" >&2; die "openssl cannot load -provider keyserver from $modulesdir"; }
grep -qi keyserver "$work/providers" || { cat "$work/providers" >&2; die "openssl list -providers does not show keyserver"; }
step "openssl list -providers -provider keyserver: loaded from $modulesdir (no OPENSSL_MODULES)"

# The dev KeyServer, as scripts/signandvalidate.sh starts it.
ready=$work/ready.json
mkfifo "$work/keepalive"
"$target_dir/release/ks-devserver" --data-dir "$work/ks-data" --auth-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
  --ready-file "$ready" --watch-stdin <"$work/keepalive" >"$work/devserver.out" 2>"$work/devserver.log" &
server_pid=$!
exec 9>"$work/keepalive"
for _ in $(seq 1 1200); do
  [ -s "$ready" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/devserver.log" >&2; die "the dev KeyServer exited before it was ready"; }
  sleep 0.1
done
[ -s "$ready" ] || die "the dev KeyServer was not ready after 120 s"
json_field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$ready"; }
KSC_API_SERVER=$(json_field api_url) KSC_AUTH_SERVER=$(json_field auth_url) KSC_CA_FILE=$(json_field ca_file)
KSC_SIGNING_CA_FILE=$(json_field signing_ca_file)
export KSC_API_SERVER KSC_AUTH_SERVER KSC_CA_FILE KSC_SIGNING_CA_FILE
as_user() { env -u KSC_ID_TOKEN KSC_CLIENT_ID="$1" KSC_CLIENT_SECRET="$1-secret" "${@:2}"; }
KSC_ID_TOKEN=$(as_user orderer-client ksc token) || die "ksc token failed against the dev KeyServer"
export KSC_ID_TOKEN
KSC_OPERATION_ID=$(ksc operation create --key key1=1 --valid 120s --description "package check") \
  || die "ksc operation create failed"
export KSC_OPERATION_ID
# The demo approvers (tests/devserver/README.md); adminclient where a second approval is needed.
for who in approver-key1 adminclient; do
  as_user "$who" ksc operation approve "$KSC_OPERATION_ID" >/dev/null 2>&1 || true
done
ksc operation wait "$KSC_OPERATION_ID" --timeout 60s >/dev/null || die "operation $KSC_OPERATION_ID is not approved"
step "dev KeyServer at $KSC_API_SERVER; operation $KSC_OPERATION_ID approved for key1"

pkcs11-tool --module "$module" --list-objects --type privkey >"$work/objects" 2>&1 \
  || { cat "$work/objects" >&2; die "pkcs11-tool --module $module --list-objects failed"; }
grep -q 'label: *key1$' "$work/objects" || { cat "$work/objects" >&2; die "pkcs11-tool lists no key1 through $module"; }
step "pkcs11-tool --module $module lists $(grep -c 'label:' "$work/objects") keys, key1 among them"

printf 'firmware signed through the installed package\n' >"$work/firmware.bin"
env -u OPENSSL_MODULES -u OPENSSL_CONF openssl dgst -sha256 -provider keyserver -sign ks:key1 \
  -out "$work/firmware.sig" "$work/firmware.bin" || die "openssl dgst -provider keyserver -sign ks:key1 failed"
ksc cert key1 -o "$work/key1.pem" || die "ksc cert key1 failed"
openssl x509 -in "$work/key1.pem" -pubkey -noout >"$work/key1.pub"
openssl dgst -sha256 -verify "$work/key1.pub" -signature "$work/firmware.sig" "$work/firmware.bin" >/dev/null \
  || die "the signature made through the installed provider does NOT verify"
step "signed with the installed provider (openssl dgst -provider keyserver -sign ks:key1), verified with key1's certificate"

conf=/etc/keyserver-signing/ksc.conf
edit="# edited by the package check: this line must survive the upgrade"
printf '%s\n' "$edit" >>"$conf"
apt-get install -y -qq -o Dpkg::Options::=--force-confold "$deb2" </dev/null >"$work/upgrade.log" 2>&1 \
  || { cat "$work/upgrade.log" >&2; die "apt-get install $deb2 (the upgrade) failed"; }
[ "$(dpkg-query -W -f='${Version}' "$pkg")" = "$upgrade_version" ] || die "the upgrade to $upgrade_version did not happen"
grep -qxF "$edit" "$conf" || die "the upgrade lost the edit of $conf"
[ -f "$conf.dpkg-dist" ] || die "the upgrade did not leave the new config as $conf.dpkg-dist"
grep -q "changed in $upgrade_version" "$conf.dpkg-dist" || die "$conf.dpkg-dist is not the upgrade's config"
step "upgraded to $upgrade_version unattended: the edit of $conf kept, the new one is $conf.dpkg-dist"

dpkg -r "$pkg" >&2 || die "dpkg -r $pkg failed"
for f in /usr/bin/ksc "$modulesdir/keyserver.so" "$module" /usr/share/p11-kit/modules/keyserver.module; do
  [ ! -e "$f" ] || die "dpkg -r left $f"
done
grep -qxF "$edit" "$conf" || die "dpkg -r did not keep the edited $conf"
dpkg-query -W -f='${Status}' "$pkg" | grep -q config-files || die "dpkg does not list $pkg as config-files after dpkg -r"
step "dpkg -r: programs and libraries removed, $conf kept"

dpkg -P "$pkg" >&2 || die "dpkg -P $pkg failed"
for f in "$conf" /etc/keyserver-signing/openssl-ks.cnf /etc/keyserver-signing/openssl-pkcs11-engine.cnf; do
  [ ! -e "$f" ] || die "dpkg -P left $f"
done
step "dpkg -P: configs removed (left in /etc/keyserver-signing: $(ls -A /etc/keyserver-signing 2>/dev/null | tr '\n' ' ')); all passed"
