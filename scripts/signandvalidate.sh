#!/usr/bin/env bash
# signandvalidate.sh - the firmware-signing tutorial, end to end.
#
# Without KSC_API_SERVER it builds what is missing (release), starts the bundled
# dev KeyServer on loopback (ephemeral ports, a temporary data directory), and
# walks the tutorial: token -> operation for an RSA and an EC key (60 s, one use
# each) -> approval (by the demo approver users: no human is at hand) -> wait
# until approved -> sign a sample firmware image with the OpenSSL provider
# (openssl dgst -provider keyserver -sign ks:KEY), with pkcs11-tool and with
# libp11's engine (the tutorial's openssl config) -> read each certificate ->
# verify every signature with openssl -> summary. Signatures and certificates
# stay in the output directory. The dev KeyServer it started is always stopped.
#
# With KSC_API_SERVER set (and KSC_ID_TOKEN, or KSC_AUTH_SERVER + KSC_CLIENT_ID +
# KSC_CLIENT_SECRET, or a KSC_CONFIG file saying so) it runs the same flow
# against that KeyServer and waits for people to approve each operation.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<'TXT'
Usage: scripts/signandvalidate.sh [options]

The tutorial's whole signing flow. With no KSC_API_SERVER in the environment it
runs against the bundled dev KeyServer (started on loopback, stopped at the
end); with KSC_API_SERVER it runs against that KeyServer and waits for human
approval.

Options:
  --out DIR            where signatures, certificates, public keys and
                       summary.txt are left (default: ./output); files of an
                       earlier run there are replaced
  --image FILE         firmware image to sign (default: a generated 256 KiB
                       sample image, written to DIR/firmware.bin)
  --rsa-key KEYID      RSA key to sign with (default: key1)
  --ec-key KEYID       EC key to sign with (default: key4)
  --paths LIST         signing paths, comma separated, in this order
                       (default: provider,pkcs11-tool,engine):
                         provider     openssl dgst -provider keyserver -sign ks:KEY
                         pkcs11-tool  pkcs11-tool --module libpkcs11ks.so --sign
                         engine       openssl dgst -engine pkcs11 -keyform engine
                                      -sign pkcs11:object=KEY (libp11, the tutorial's path)
  --valid DURATION     validity of each operation, Go syntax (default: 60s);
                       approval and signing must both finish inside it
  --one-operation      open one operation for all paths (each key may then be
                       used once per path) instead of one operation per path;
                       handy with a real KeyServer: people approve only once
  --description TEXT   operation description shown to approvers (default:
                       $KSC_OPERATION_DESCRIPTION, else "Building of firmware
                       for XYZ development board")
  --target-dir DIR     Cargo target directory holding the build (default:
                       $CARGO_TARGET_DIR, else ./target of the repository)
  --profile NAME       build profile to use: release (default) or debug
  --no-build           never run cargo; fail if an artefact is missing
  --no-install         never install Debian/Ubuntu packages; only report them
  -h, --help           this text

Environment:
  KSC_API_SERVER       a real KeyServer API URL: switches off the dev KeyServer
                       (so does KSC_CONFIG, a ksc config file naming one)
  KSC_ID_TOKEN         bearer token (e.g. a CI JWT) for the real KeyServer, or
  KSC_AUTH_SERVER, KSC_CLIENT_ID, KSC_CLIENT_SECRET
                       client credentials to obtain one
  KSC_CA_FILE          extra trust anchors for the KeyServer's TLS certificate
  KSC_SIGNING_CA_FILE  the CA that issues the KeyServer's signing certificates
                       (set to the dev KeyServer's signing-ca.pem in a dev run)
  KSC_CONFIG           a ksc config file with any of these settings
  KSC_OPERATION_DESCRIPTION, KSC_HTTP_CLIENT_TIMEOUT, KSC_LOG
                       as documented in README.md (Configuration)

Exit status: 0 when every signature was made and verified; 1 when a step
failed (the failing step is named); 2 for a bad command line.

Examples:
  scripts/signandvalidate.sh                        # dev KeyServer, everything
  scripts/signandvalidate.sh --out /tmp/sigs --paths provider
  KSC_API_SERVER=https://keyserver.example:8200 KSC_ID_TOKEN=$JWT \
    scripts/signandvalidate.sh --valid 10m --one-operation
TXT
}

out_dir=./output image="" rsa_key=key1 ec_key=key4 paths=provider,pkcs11-tool,engine
valid=60s one_operation=0 description=${KSC_OPERATION_DESCRIPTION:-"Building of firmware for XYZ development board"}
target_dir=${CARGO_TARGET_DIR:-$root/target} profile=release build=1 install=1

need_arg() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then echo "signandvalidate: $1 needs a value (see --help)" >&2; exit 2; fi
}
while [ $# -gt 0 ]; do
  case $1 in
    --out) need_arg "$@"; out_dir=$2; shift 2 ;;
    --image) need_arg "$@"; image=$2; shift 2 ;;
    --rsa-key) need_arg "$@"; rsa_key=$2; shift 2 ;;
    --ec-key) need_arg "$@"; ec_key=$2; shift 2 ;;
    --paths) need_arg "$@"; paths=$2; shift 2 ;;
    --valid) need_arg "$@"; valid=$2; shift 2 ;;
    --one-operation) one_operation=1; shift ;;
    --description) need_arg "$@"; description=$2; shift 2 ;;
    --target-dir) need_arg "$@"; target_dir=$2; shift 2 ;;
    --profile) need_arg "$@"; profile=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-install) install=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "signandvalidate: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

case $profile in
  release) cargo_profile=(--release) ;;
  debug|dev) profile=debug; cargo_profile=() ;;
  *) echo "signandvalidate: --profile must be release or debug, not $profile" >&2; exit 2 ;;
esac
IFS=, read -r -a path_list <<<"$paths"
[ ${#path_list[@]} -gt 0 ] || { echo "signandvalidate: --paths is empty" >&2; exit 2; }
for p in "${path_list[@]}"; do
  case $p in
    provider|pkcs11-tool|engine) ;;
    *) echo "signandvalidate: unknown signing path '$p' in --paths (provider, pkcs11-tool, engine)" >&2; exit 2 ;;
  esac
done
[[ $valid =~ ^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$ ]] || { echo "signandvalidate: --valid '$valid' is not a duration like 60s, 10m or 1m30s" >&2; exit 2; }
for k in "$rsa_key" "$ec_key"; do
  [[ $k =~ ^[A-Za-z0-9._-]+$ ]] || { echo "signandvalidate: '$k' is not a key id" >&2; exit 2; }
done

# ---------------------------------------------------------------- output ----
step_no=0
step() { step_no=$((step_no + 1)); printf '\n== %d. %s\n' "$step_no" "$*"; }
info() { printf '   %s\n' "$*"; }
die() { printf 'signandvalidate: %s\n' "$*" >&2; exit 1; }
# Prints a command (without secrets: none of our commands carry one) and runs it.
run() { printf '   $ %s\n' "$*"; "$@"; }
has_path() { local p; for p in "${path_list[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

# A KeyServer configured in the environment or in a KSC_CONFIG file means a real one.
if [ -n "${KSC_API_SERVER:-}" ] || [ -n "${KSC_CONFIG:-}" ]; then mode=remote; else mode=dev; fi
server_name() { echo "${KSC_API_SERVER:-the KeyServer of $KSC_CONFIG}"; }

# --------------------------------------------------------- prerequisites ----
# Finds libp11's OpenSSL engine in OpenSSL's engines directory.
find_engine() {
  local dir
  dir=$(openssl version -e 2>/dev/null | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
  for f in "$dir/pkcs11.so" "$dir/libpkcs11.so" /usr/lib/*/engines-3/pkcs11.so; do
    if [ -f "$f" ]; then echo "$f"; return 0; fi
  done
  return 1
}

# Lists "package:why" for each missing tool the chosen paths need.
missing_packages() {
  command -v openssl >/dev/null 2>&1 || echo "openssl:the openssl command"
  if has_path pkcs11-tool || has_path engine; then
    command -v pkcs11-tool >/dev/null 2>&1 || echo "opensc:pkcs11-tool"
  fi
  # (An OpenSSL without engines, 4.0 and later, is reported after this check.)
  if has_path engine && command -v openssl >/dev/null 2>&1 && openssl version -e >/dev/null 2>&1; then
    find_engine >/dev/null || echo "libengine-pkcs11-openssl:libp11's OpenSSL engine (engines-3/pkcs11.so)"
  fi
  if [ $build -eq 1 ]; then
    if command -v dpkg-query >/dev/null 2>&1; then
      # By package, as deps.sh decides: a neighbour's file (libclang-cpp's
      # library) must not pass for libclang-dev.
      bash "$root/scripts/deps.sh" --check build | sed 's/$/:building the project/'
    else
      command -v cc >/dev/null 2>&1 || echo "gcc:a C compiler and linker for building the project"
      command -v pkg-config >/dev/null 2>&1 || echo "pkg-config:building the provider"
      [ -e /usr/include/openssl/core_dispatch.h ] || compgen -G "/usr/include/*/openssl/core_dispatch.h" >/dev/null \
        || echo "libssl-dev:OpenSSL 3 headers for building the provider"
      compgen -G "/usr/lib*/llvm-*/lib/libclang.so*" >/dev/null || compgen -G "/usr/lib*/libclang.so*" >/dev/null \
        || echo "libclang-dev:bindgen while building the provider"
    fi
  fi
  return 0
}

step "Prerequisites ($mode KeyServer; signing paths: ${path_list[*]})"
missing=$(missing_packages)
if [ -n "$missing" ] && [ $install -eq 1 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  info "installing missing packages with scripts/deps.sh: $(echo "$missing" | cut -d: -f1 | tr '\n' ' ')"
  # deps.sh's `tutorial` profile is the build set plus pkcs11-tool and libp11's
  # engine; a deps.sh without that profile gets `test` (a superset).
  deps_profile="test"
  grep -q 'tutorial' "$root/scripts/deps.sh" && deps_profile=tutorial
  bash "$root/scripts/deps.sh" "$deps_profile" || die "scripts/deps.sh could not install the packages above"
  missing=$(missing_packages)
fi
if [ -n "$missing" ]; then
  while IFS=: read -r pkg why; do
    printf 'signandvalidate: missing %s: install it with: sudo apt-get install %s\n' "$why" "$pkg" >&2
  done <<<"$missing"
  [ $install -eq 1 ] && [ "$(id -u)" -ne 0 ] && echo "signandvalidate: (run as root to let scripts/deps.sh install them)" >&2
  exit 1
fi
info "openssl: $(openssl version)"
if has_path engine && ! openssl version -e >/dev/null 2>&1; then
  die "$(openssl version) has no engine API (OpenSSL 4.0 and later): leave out the engine path, e.g. --paths provider,pkcs11-tool"
fi

bin=$target_dir/$profile
artefacts=(ksc)
[ $mode = dev ] && artefacts+=(ks-devserver)
has_path provider && artefacts+=(libkeyserver.so)
{ has_path pkcs11-tool || has_path engine; } && artefacts+=(libpkcs11ks.so)
if [ $build -eq 1 ]; then
  command -v cargo >/dev/null 2>&1 \
    || die "cargo is not installed: install Rust 1.85 or newer (https://rustup.rs), or pass --no-build with a built --target-dir"
  packages=(-p ks-cli)
  [ $mode = dev ] && packages+=(-p ks-devserver)
  has_path provider && packages+=(-p ks-provider)
  { has_path pkcs11-tool || has_path engine; } && packages+=(-p ks-pkcs11)
  step "Build ($profile) into $bin (cargo builds only what is missing or stale)"
  run cargo build "${cargo_profile[@]}" --locked --manifest-path "$root/Cargo.toml" \
    --target-dir "$target_dir" "${packages[@]}" || die "the build failed (see cargo's output above)"
fi
for a in "${artefacts[@]}"; do
  [ -f "$bin/$a" ] || die "$bin/$a is missing: build it (cargo build --$profile), or run without --no-build"
done
ksc=$bin/ksc

# ------------------------------------------------------------ work area ----
work=$(mktemp -d "${TMPDIR:-/tmp}/signandvalidate.XXXXXX")
server_pid=""
cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    echo "   (dev KeyServer stopped)"
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$out_dir" || die "cannot create the output directory $out_dir"
out_dir=$(cd "$out_dir" && pwd)
# Only the files an earlier run left (never other files of that directory).
rm -f "$out_dir"/firmware.provider.*.sig "$out_dir"/firmware.pkcs11-tool.*.sig "$out_dir"/firmware.engine.*.sig \
  "$out_dir"/*.provider.cert.pem "$out_dir"/*.provider.pub.pem "$out_dir"/*.pkcs11.cert.der \
  "$out_dir"/*.pkcs11.pub.pem "$out_dir"/signing-ca.pem "$out_dir"/summary.txt

# ----------------------------------------------------------- KeyServer ----
if [ $mode = dev ]; then
  step "Start the bundled dev KeyServer (loopback, ephemeral ports, data in a temporary directory)"
  ready=$work/ready.json
  # --watch-stdin: the server also exits if this script is killed (its end of
  # the FIFO closes), so it can never outlive the run.
  mkfifo "$work/keepalive"
  "$bin/ks-devserver" --data-dir "$work/ks-data" --auth-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --ready-file "$ready" --watch-stdin <"$work/keepalive" >"$work/devserver.out" 2>"$work/devserver.log" &
  server_pid=$!
  exec 9>"$work/keepalive"
  # Bounded wait for the ready file (the first start ever also generates the demo keys).
  for _ in $(seq 1 1200); do
    [ -s "$ready" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
      cat "$work/devserver.log" >&2
      die "the dev KeyServer exited before it was ready (its log is above)"
    fi
    sleep 0.1
  done
  [ -s "$ready" ] || { tail -20 "$work/devserver.log" >&2; die "the dev KeyServer was not ready after 120 s"; }
  json_field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$ready"; }
  KSC_API_SERVER=$(json_field api_url)
  KSC_AUTH_SERVER=$(json_field auth_url)
  KSC_CA_FILE=$(json_field ca_file)
  signing_ca=$(json_field signing_ca_file)
  # Only keys whose certificates this CA issued are used (a server cannot substitute one).
  KSC_SIGNING_CA_FILE=$signing_ca
  export KSC_API_SERVER KSC_AUTH_SERVER KSC_CA_FILE KSC_SIGNING_CA_FILE
  info "auth server: $KSC_AUTH_SERVER"
  info "API server:  $KSC_API_SERVER"
  info "TLS CA:      KSC_CA_FILE=$KSC_CA_FILE"
  info "signing CA:  KSC_SIGNING_CA_FILE=$KSC_SIGNING_CA_FILE"
  # Nothing from the caller's environment may leak into the dev run.
  unset KSC_ID_TOKEN KSC_CLIENT_ID KSC_CLIENT_SECRET KSC_CONFIG KSC_OPERATION_ID KSC_KEY_PINS
  # The demo users' client secrets are public: <user>-secret (tests/devserver/README.md).
  as_user() { env -u KSC_ID_TOKEN KSC_CLIENT_ID="$1" KSC_CLIENT_SECRET="$1-secret" "${@:2}"; }
  step "Token: log in as the demo user orderer-client (client credentials)"
  info "\$ export KSC_ID_TOKEN=\$(ksc token)   # the tutorial's curl ... /oauth2/token | jq -r .access_token"
  KSC_ID_TOKEN=$(as_user orderer-client "$ksc" token) || die "could not get a token from the dev auth server"
else
  step "Token for $(server_name)"
  if [ -n "${KSC_ID_TOKEN:-}" ]; then
    info "using KSC_ID_TOKEN from the environment"
  else
    info "\$ export KSC_ID_TOKEN=\$(ksc token)   # client credentials (KSC_AUTH_SERVER, KSC_CLIENT_ID)"
  fi
  KSC_ID_TOKEN=$("$ksc" token) \
    || die "no token: set KSC_ID_TOKEN, or KSC_AUTH_SERVER with KSC_CLIENT_ID and KSC_CLIENT_SECRET (ksc's reason is above)"
  signing_ca=""
fi
export KSC_ID_TOKEN
export KSC_OPERATION_DESCRIPTION=$description

step "Available keys"
run "$ksc" keys || die "could not list the keys of $(server_name) (ksc's reason is above)"

# ------------------------------------------------------------- helpers ----
modules=$work/ossl-modules
if has_path provider; then
  # OpenSSL loads `-provider keyserver` as keyserver.so; Cargo builds libkeyserver.so.
  mkdir -p "$modules"
  ln -s "$bin/libkeyserver.so" "$modules/keyserver.so"
fi
module=$bin/libpkcs11ks.so
engine_cnf=$work/openssl-pkcs11-engine.cnf
if has_path engine; then
  engine=$(find_engine)
  # The tutorial's engine configuration (conf/openssl-pkcs11-engine.cnf) with
  # this machine's engine and our module filled in.
  sed -e "s|^dynamic_path *=.*|dynamic_path = $engine|" -e "s|^MODULE_PATH *=.*|MODULE_PATH = $module|" \
    "$root/conf/openssl-pkcs11-engine.cnf" >"$engine_cnf"
fi

uses_per_key=1
[ $one_operation -eq 1 ] && uses_per_key=${#path_list[@]}

# Creates an operation for both keys and leaves its id in KSC_OPERATION_ID.
open_operation() {
  step "Operation for $1: $rsa_key and $ec_key, $uses_per_key use(s) each, valid $valid"
  info "\$ export KSC_OPERATION_ID=\$(ksc operation create --key $rsa_key=$uses_per_key --key $ec_key=$uses_per_key --valid $valid --description '$description')"
  KSC_OPERATION_ID=$("$ksc" operation create --key "$rsa_key=$uses_per_key" --key "$ec_key=$uses_per_key" \
    --valid "$valid" --description "$description") || die "could not create the operation (ksc's reason is above)"
  export KSC_OPERATION_ID
  info "KSC_OPERATION_ID=$KSC_OPERATION_ID"
  run "$ksc" operation status || die "could not read operation $KSC_OPERATION_ID"
}

# The state word of an operation (pending, approved, rejected, expired, exhausted).
op_state() { "$ksc" operation status "$1" | sed -n '1s/^operation .*: //p'; }

# Dev mode: approves as the demo approver of each key (and adminclient when a
# key needs a second approval); remote mode: tells what it waits for.
approve_operation() {
  local op=$KSC_OPERATION_ID
  if [ $mode = dev ]; then
    step "Approval of operation $op"
    info "No approver is at hand in this demo, so the script approves as the demo approver users"
    info "(with a real KeyServer a person approves in its web UI, keyclient)."
    local who
    for who in "approver-$rsa_key" "approver-$ec_key" adminclient; do
      [ "$(op_state "$op")" = pending ] || break
      info "\$ KSC_CLIENT_ID=$who ksc operation approve $op"
      as_user "$who" "$ksc" operation approve "$op" >/dev/null \
        || info "($who may not approve: it holds no approval right for a key that needs one)"
    done
  else
    step "Waiting for people to approve operation $op"
    info "Ask the approvers of $rsa_key and $ec_key to approve operation $op in the KeyServer web UI (keyclient)."
    info "It is valid for $valid from its creation; signing must finish inside that too."
  fi
  step "Wait until operation $op is approved"
  run "$ksc" operation wait "$op" --timeout "$valid" || die "operation $op was not approved (ksc's reason is above)"
}

# Verifies SIG over the image with the public key of CERT (PEM or DER).
verify_sig() { # label cert form sig
  local label=$1 cert=$2 form=$3 sig=$4 pub=${2%.cert.*}.pub.pem
  openssl x509 -inform "$form" -in "$cert" -pubkey -noout -out "$pub" || die "cannot read the public key of $cert"
  run openssl dgst -sha256 -verify "$pub" -signature "$sig" "$image" || die "$label: the signature $sig does NOT verify"
  summary+=("$(printf '%-12s %-6s %-10s %-34s %s' "$label" "$key" "$(key_kind "$key")" "$(basename "$sig")" "Verified OK")")
}
key_kind() { if [ "$1" = "$rsa_key" ]; then echo RSA; else echo EC; fi; }
summary=()

sign_provider() {
  step "Sign with the OpenSSL provider (keyserver.so), read the certificates, verify"
  info "(the provider is loaded from $modules; an installed keyserver.so needs no -provider-path)"
  for key in "$rsa_key" "$ec_key"; do
    local sig=$out_dir/firmware.provider.$key.sig cert=$out_dir/$key.provider.cert.pem
    run openssl dgst -provider-path "$modules" -provider keyserver -sign "ks:$key" -sha256 -out "$sig" "$image" \
      || die "provider: signing with $key failed (the provider's reason is above)"
    run openssl storeutl -provider-path "$modules" -provider keyserver -provider default -certs -out "$work/store.out" "ks:$key" \
      || die "provider: reading the certificate of $key failed"
    openssl x509 -in "$work/store.out" -out "$cert" || die "provider: storeutl gave no certificate for $key"
    verify_sig provider "$cert" PEM "$sig"
  done
}

sign_pkcs11_tool() {
  step "Sign with pkcs11-tool through the PKCS#11 module (libpkcs11ks.so), read the certificates, verify"
  info "The tutorial's key listing (the token KEYSERVER: a private key, public key and certificate per key):"
  run pkcs11-tool --module "$module" --list-objects --type privkey >"$work/objects.txt" \
    || die "pkcs11-tool cannot list the keys through $module"
  cat "$work/objects.txt"
  for key in "$rsa_key" "$ec_key"; do
    local sig=$out_dir/firmware.pkcs11-tool.$key.sig cert=$out_dir/$key.pkcs11.cert.der mech=SHA256-RSA-PKCS fmt=() id
    [ "$key" = "$ec_key" ] && { mech=ECDSA-SHA256; fmt=(--signature-format openssl); }
    # pkcs11-tool selects the key to sign with by CKA_ID (--label does not select it).
    id=$(awk -v k="$key" '$1 == "label:" { found = ($2 == k) } found && $1 == "ID:" { print $2; exit }' "$work/objects.txt")
    [ -n "$id" ] || die "pkcs11-tool lists no private key labelled $key"
    run pkcs11-tool --module "$module" --sign --mechanism "$mech" "${fmt[@]}" --id "$id" \
      --input-file "$image" --output-file "$sig" || die "pkcs11-tool: signing with $key failed (the reason is above)"
    run pkcs11-tool --module "$module" --read-object --type cert --label "$key" --output-file "$cert" \
      || die "pkcs11-tool: reading the certificate of $key failed"
    verify_sig pkcs11-tool "$cert" DER "$sig"
  done
}

sign_engine() {
  step "Sign with libp11's engine and the tutorial's openssl config, verify"
  info "OPENSSL_CONF=$engine_cnf   (conf/openssl-pkcs11-engine.cnf with this machine's paths)"
  for key in "$rsa_key" "$ec_key"; do
    local sig=$out_dir/firmware.engine.$key.sig cert=$out_dir/$key.pkcs11.cert.der
    printf '   $ OPENSSL_CONF=%s %s\n' "$engine_cnf" \
      "openssl dgst -engine pkcs11 -keyform engine -sign pkcs11:object=$key -sha256 -out $sig $image"
    OPENSSL_CONF=$engine_cnf openssl dgst -engine pkcs11 -keyform engine -sign "pkcs11:object=$key" -sha256 \
      -out "$sig" "$image" || die "engine: signing with $key failed (the reason is above)"
    if [ ! -f "$cert" ]; then
      run pkcs11-tool --module "$module" --read-object --type cert --label "$key" --output-file "$cert" \
        || die "pkcs11-tool: reading the certificate of $key failed"
    fi
    verify_sig engine "$cert" DER "$sig"
  done
}

# ----------------------------------------------------------- the flow ----
if [ -z "$image" ]; then
  image=$out_dir/firmware.bin
  step "Sample firmware image"
  head -c 262144 /dev/urandom >"$image"
  info "$image (256 KiB of random bytes)"
else
  [ -f "$image" ] || die "--image $image: no such file"
  image=$(cd "$(dirname "$image")" && pwd)/$(basename "$image")
fi

echo
info "Each operation allows exactly $uses_per_key signature(s) per key: KeyServer refuses any further"
info "one, so a pipeline can never sign twice by accident. That is why each signing path below"
if [ $one_operation -eq 1 ]; then info "shares one operation with one use per path."; else info "opens its own operation."; fi

opened=0
for p in "${path_list[@]}"; do
  if [ $one_operation -eq 0 ] || [ $opened -eq 0 ]; then
    open_operation "$p"
    approve_operation
    opened=1
  fi
  case $p in
    provider) sign_provider ;;
    pkcs11-tool) sign_pkcs11_tool ;;
    engine) sign_engine ;;
  esac
  if [ $one_operation -eq 0 ] && [ "$p" = "${path_list[0]}" ]; then
    step "A second signature under the same operation is refused"
    info "\$ ksc sign --key $rsa_key --in $image --out $work/again.sig"
    set +e
    "$ksc" sign --key "$rsa_key" --in "$image" --out "$work/again.sig" 2>"$work/again.err"
    rc=$?
    set -e
    [ $rc -eq 13 ] || { cat "$work/again.err" >&2; die "expected the refusal 'exhausted' (exit 13), got exit $rc"; }
    info "refused as expected: $(head -1 "$work/again.err")"
  fi
done

if [ -n "$signing_ca" ]; then
  step "The certificates chain to the dev KeyServer's signing CA"
  cp "$signing_ca" "$out_dir/signing-ca.pem"
  for cert in "$out_dir"/*.cert.pem; do
    [ -e "$cert" ] && run openssl verify -CAfile "$out_dir/signing-ca.pem" "$cert"
  done
  for cert in "$out_dir"/*.cert.der; do
    [ -e "$cert" ] || continue
    openssl x509 -inform DER -in "$cert" -out "$work/c.pem"
    printf '   $ openssl verify -CAfile %s %s\n' "$out_dir/signing-ca.pem" "$cert"
    openssl verify -CAfile "$out_dir/signing-ca.pem" "$work/c.pem" >/dev/null || die "$cert does not chain to the signing CA"
    info "$cert: OK"
  done
fi

step "Summary"
{
  echo "Signed $image ($(wc -c <"$image") bytes) on $(server_name) ($mode KeyServer)"
  printf '%-12s %-6s %-10s %-34s %s\n' PATH KEY TYPE SIGNATURE RESULT
  printf '%s\n' "${summary[@]}"
  echo "${#summary[@]} signatures, all verified with openssl; files in $out_dir"
} | tee "$out_dir/summary.txt"
