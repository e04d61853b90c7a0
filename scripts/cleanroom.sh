#!/usr/bin/env bash
# The clean room: proves the README's two commands and the Dockerfile on a
# fresh Debian, where nothing installed by hand on this machine can help.
#
#   sudo bash scripts/cleanroom.sh [--room-only | --docker-only | --package-only] [--keep]
#
# 1. room    A fresh Debian root (debootstrap --variant=minbase), given /proc,
#            /sys, /dev (with /dev/shm and /dev/pts) and this machine's
#            loopback, the host's rustup toolchain read-only (as rustup would
#            have installed it) and this machine's network set-up (resolv.conf
#            and the CA certificates in /usr/local/share/ca-certificates): no
#            package, no target dir, no cargo registry from the host. A fresh
#            `git clone` of the commit under test runs the README's two
#            commands in order, as root, exactly as the README writes them;
#            then, in the same room, the Debian package's check
#            (`bash tests/package/check.sh`: build the .deb, apt-get install
#            it, use it, upgrade over an edited config, dpkg -r, dpkg -P).
# 2. docker  Local base images made from the same debootstrap root (the public
#            rust:/debian: images cannot be pulled here), then the README's
#            `docker build -t libpkcs11ks .` (with --build-arg RUST_IMAGE/
#            DEBIAN_IMAGE naming them) and `docker run --rm -v
#            "$PWD/output:/output" libpkcs11ks`; the artefacts in output/ are
#            checked and every signature is verified with the host's openssl.
#
# Needs root (debootstrap, chroot, mounts, dockerd), a rustup toolchain on the
# host, about 20 GiB free, and Debian's mirror. Its own host packages
# (debootstrap, docker.io) come from `scripts/deps.sh cleanroom`. Everything
# runs in private mount and PID namespaces, so nothing stays mounted or
# running when it ends, however it ends. Logs and artefacts stay in
# target/cleanroom (see --help).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo bash scripts/cleanroom.sh [--room-only | --docker-only | --package-only] [--keep]

  --room-only    only the room: the README's two commands, then the Debian
                 package's check, in a fresh debootstrap root
  --docker-only  only the Dockerfile: docker build + docker run + checks
  --package-only only the Debian package's check (bash tests/package/check.sh)
                 in a fresh debootstrap root, without the README's commands
  --keep         keep the room's files after a successful run (a failed run
                 always keeps them, for reading)
  -h, --help     this text

Settings (environment):
  CLEANROOM_DIR           work directory (default: <repo>/target/cleanroom)
  CLEANROOM_MIRROR        Debian mirror (default: http://deb.debian.org/debian)
  CLEANROOM_SUITE         Debian release (default: bookworm)
  CLEANROOM_MIN_FREE_GB   free disk it insists on before starting (default: 20)

The commit under test is HEAD of this checkout (uncommitted changes are not
in it). Exit status: 0 all passed, 1 a stage failed, 2 bad usage.
EOF
}

# ------------------------------------------------------------- options ----
mode=all keep=0
for arg in "$@"; do
  case $arg in
    --room-only) mode=room ;;
    --docker-only) mode=docker ;;
    --package-only) mode=package ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    __inside-room) ;;  # internal: see run_inside_room
    *) echo "cleanroom: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${CLEANROOM_DIR:-$repo/target/cleanroom}
mirror=${CLEANROOM_MIRROR:-http://deb.debian.org/debian}
suite=${CLEANROOM_SUITE:-bookworm}
min_free_gb=${CLEANROOM_MIN_FREE_GB:-20}
room=$work/room
checkout=/root/keyserver-signing
room_path=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf 'cleanroom: %s\n' "$*" >&2; }
die() { printf 'cleanroom: ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# --------------------------------------------------- inside the room ----
# Runs in the private mount + PID namespaces made by `unshare` below: the
# mounts made here vanish with the namespace, and when this process (the
# namespace's init) ends, every process started in the room is killed.
if [ "${1:-}" = __inside-room ]; then
  mount --make-rprivate /
  mount -t proc proc "$room/proc"
  mount --rbind /sys "$room/sys"
  mount --rbind /dev "$room/dev"
  # The host's rustup toolchain, read-only, where rustup puts it for root.
  mkdir -p "$room/root/.rustup" "$room/root/.cargo/bin"
  mount --bind "$RUSTUP_DIR" "$room/root/.rustup"
  mount -o remount,bind,ro "$room/root/.rustup"
  mount --bind "$CARGO_BIN_DIR" "$room/root/.cargo/bin"
  mount -o remount,bind,ro "$room/root/.cargo/bin"
  status=0
  n=0
  while IFS= read -r command; do
    n=$((n + 1))
    start=$(date +%s)
    say "room: [$n] \$ $command   (in $checkout, as root)"
    # As a user would type it: a login-less root shell with rustup's PATH and
    # nothing else of the host's environment.
    if chroot "$room" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
        TERM=dumb LANG=C.UTF-8 PATH="$room_path" ${CI:+CI=$CI} \
        /bin/bash -c "cd $checkout && $command" </dev/null; then
      say "room: [$n] \$ $command: PASSED in $(elapsed "$start")"
      echo "$n passed $(( $(date +%s) - start )) $command" >>"$work/room-results"
    else
      rc=$?
      say "room: [$n] \$ $command: FAILED (exit $rc) after $(elapsed "$start")"
      echo "$n failed $(( $(date +%s) - start )) $command" >>"$work/room-results"
      status=1
      break
    fi
  done <"$work/room-commands"
  exit $status
fi

# ------------------------------------------------------------- checks ----
stage_names=() stage_times=() stage_results=()
record() { stage_names+=("$1"); stage_times+=("$2"); stage_results+=("$3"); }
summary() {
  local i
  [ ${#stage_names[@]} -gt 0 ] || return 0
  say "stage times:"
  for i in "${!stage_names[@]}"; do
    printf 'cleanroom:   %-44s %-7s %s\n' "${stage_names[$i]}" "${stage_results[$i]}" "${stage_times[$i]}" >&2
  done
}

case $min_free_gb in ''|*[!0-9]*) echo "cleanroom: CLEANROOM_MIN_FREE_GB must be a whole number of GiB, not '$min_free_gb'" >&2; exit 2 ;; esac
# The disk first (the place it checks exists for anyone), then root.
probe=$work
while [ ! -d "$probe" ]; do probe=$(dirname "$probe"); done
free_kb=$(df -Pk "$probe" | awk 'NR == 2 { print $4 }')
if [ -z "$free_kb" ] || [ "$free_kb" -lt $((min_free_gb * 1024 * 1024)) ]; then
  die "only $((${free_kb:-0} / 1024 / 1024)) GiB free on the disk of $work; the clean room needs about ${min_free_gb} GiB (a Debian root, two builds, the docker images): free some space or set CLEANROOM_DIR to a larger disk"
fi
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts and dockerd): run it as root, e.g. sudo bash scripts/cleanroom.sh"
mkdir -p "$work" || die "cannot create $work"

bash "$repo/scripts/deps.sh" cleanroom || die "scripts/deps.sh cleanroom could not install the host's tools (see above)"
for tool in debootstrap unshare chroot dockerd /usr/bin/docker git tar; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing on this host (Debian: $(case $tool in debootstrap) echo debootstrap ;; dockerd|/usr/bin/docker) echo docker.io ;; git) echo git ;; *) echo util-linux/coreutils ;; esac))"
done

# The host's rustup toolchain: what a user who followed rustup.rs has.
RUSTUP_DIR=${RUSTUP_HOME:-$HOME/.rustup}
CARGO_BIN_DIR=${CARGO_HOME:-$HOME/.cargo}/bin
[ -x "$CARGO_BIN_DIR/cargo" ] && [ -d "$RUSTUP_DIR/toolchains" ] \
  || die "no rustup toolchain on this host ($CARGO_BIN_DIR/cargo, $RUSTUP_DIR/toolchains): install Rust with rustup (https://rustup.rs); the clean room mounts it read-only"
export RUSTUP_DIR CARGO_BIN_DIR

commit=$(git -C "$repo" rev-parse HEAD) || die "$repo is not a git checkout"
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  say "note: uncommitted changes in $repo are not tested (the room clones HEAD, $commit)"
fi

# Refuses to delete a directory that still has something mounted below it.
safe_rm() {
  local dir=$1
  [ -e "$dir" ] || return 0
  if findmnt -rn -o TARGET | grep -q "^$(realpath "$dir")\(/\|$\)"; then
    die "something is still mounted below $dir (findmnt | grep $dir): unmount it first"
  fi
  rm -rf --one-file-system "$dir"
}

# ------------------------------------------------------ cleanup on exit ----
room_pid="" dockerd_pid="" container=ks-cleanroom-$$
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$room_pid" ] && kill -0 "$room_pid" 2>/dev/null; then
    kill -KILL "$room_pid" 2>/dev/null || true
    wait "$room_pid" 2>/dev/null || true
  fi
  if [ -n "$dockerd_pid" ]; then
    DOCKER_HOST=$docker_host /usr/bin/docker rm -f "$container" >/dev/null 2>&1 || true
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
    say "dockerd stopped"
  fi
  summary
  if findmnt -rn -o TARGET | grep -q "^$(realpath "$work")/"; then
    say "WARNING: still mounted below $work: $(findmnt -rn -o TARGET | grep "^$(realpath "$work")/" | tr '\n' ' ')"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# ------------------------------------------------- the pristine root ----
# Cached as a tarball: a debootstrap root depends only on the suite, the
# mirror, the variant and debootstrap itself, never on this project, so the
# cache cannot hide a missing step (every package the project needs is
# installed fresh in every run by the project's own scripts).
start=$(date +%s)
key=$(printf '%s\n' "$suite" "$mirror" minbase "$(dpkg-query -W -f='${Version}' debootstrap)" | sha256sum | cut -c1-16)
base_tar=$work/cache/$suite-minbase-$key.tar
if [ -f "$base_tar" ]; then
  say "debootstrap root: cached $base_tar"
  record "debootstrap root (cached)" "$(elapsed "$start")" ok
else
  mkdir -p "$work/cache"
  rm -f "$work"/cache/*.tar
  tmp_root=$work/cache/debootstrap.tmp
  safe_rm "$tmp_root"
  say "debootstrap --variant=minbase $suite from $mirror (about a minute)"
  if ! debootstrap --variant=minbase "$suite" "$tmp_root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 15 "$work/debootstrap.log" >&2
    safe_rm "$tmp_root"
    die "debootstrap of $suite from $mirror failed (is the mirror reachable? set CLEANROOM_MIRROR); full log: $work/debootstrap.log"
  fi
  # A fresh Debian install also has the -updates and -security archives.
  security=${mirror%/debian}/debian-security
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$mirror" "$suite" "$mirror" "$suite" "$security" "$suite" >"$tmp_root/etc/apt/sources.list"
  tar -C "$tmp_root" -cf "$base_tar.part" . && mv "$base_tar.part" "$base_tar"
  safe_rm "$tmp_root"
  record "debootstrap root" "$(elapsed "$start")" ok
fi

# The machine's network set-up, and nothing more: its resolver, the CA of the
# TLS-intercepting proxy these machines reach the registries through, and the
# /etc/hosts every installed Debian has.
add_network_setup() {
  local root=$1
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # What Debian's installer writes and debootstrap does not: without it
  # "localhost" does not resolve (chromedriver reaches Chromium by that name).
  [ -e "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
  mkdir -p "$root/usr/local/share/ca-certificates"
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  fi
}

failed=0

# ------------------------------------------------------------ 1. room ----
run_room() {
  local start
  start=$(date +%s)
  safe_rm "$room"
  mkdir -p "$room"
  tar -C "$room" -xf "$base_tar"
  add_network_setup "$room"
  git clone -q --no-local "$repo" "$room$checkout"
  git -C "$room$checkout" checkout -q --detach "$commit"
  record "room: fresh root + git clone $(git -C "$repo" rev-parse --short HEAD)" "$(elapsed "$start")" ok

  # The README's first sh block: the two commands, as written.
  awk '/^```sh$/ { inside = 1; next } inside && /^```/ { exit } inside { sub(/[[:space:]]+#.*$/, ""); if ($0 ~ /[^[:space:]]/) print }' \
    "$room$checkout/README.md" >"$work/readme-commands"
  [ "$(wc -l <"$work/readme-commands")" -eq 2 ] \
    || die "the README's first sh block should hold exactly two commands; found: $(tr '\n' ';' <"$work/readme-commands")"
  # The Debian package's check runs last, in the same room: it installs,
  # upgrades and purges the package there, where dpkg -i harms nothing.
  if [ "$mode" = package ]; then
    echo "bash tests/package/check.sh" >"$work/room-commands"
  else
    { cat "$work/readme-commands"; echo "bash tests/package/check.sh"; } >"$work/room-commands"
  fi
  : >"$work/room-results"

  # setpriv --pdeathsig: if this script is killed outright, the room dies too.
  setpriv --pdeathsig KILL unshare --mount --pid --fork --kill-child \
    env room="$room" work="$work" checkout="$checkout" room_path="$room_path" \
    bash "$0" __inside-room &
  room_pid=$!
  local rc=0
  wait "$room_pid" || rc=$?
  room_pid=""
  while read -r n result secs command; do
    record "room: [$n] $command" "$((secs / 60))m$(printf '%02d' $((secs % 60)))s" "$result"
  done <"$work/room-results"
  # The suites' screenshots and reports, for CI's artefacts.
  if [ -d "$room$checkout/target/test-artefacts" ]; then
    mkdir -p "$repo/target/test-artefacts"
    cp -r "$room$checkout/target/test-artefacts/." "$repo/target/test-artefacts/"
  fi
  if [ $rc -ne 0 ]; then
    say "room: FAILED; its files stay in $room for reading"
    return 1
  fi
  [ $keep -eq 1 ] || safe_rm "$room"
}

# ---------------------------------------------------------- 2. docker ----
docker_host=unix://$work/docker/docker.sock
dk() { DOCKER_HOST=$docker_host DOCKER_BUILDKIT=1 /usr/bin/docker "$@"; }

start_dockerd() {
  local i
  mkdir -p "$work/docker"
  # Its own data root, socket and exec root, inside a private mount namespace
  # so that its overlay and netns mounts vanish with it; host networking only
  # (no bridge, no iptables rules on this machine).
  setpriv --pdeathsig KILL unshare --mount --propagation private \
    dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" \
    --host "$docker_host" --pidfile "$work/docker/dockerd.pid" \
    --bridge=none --iptables=false --ip6tables=false >"$work/docker/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for i in $(seq 1 60); do
    dk info >/dev/null 2>&1 && return 0
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 1
  done
  tail -n 20 "$work/docker/dockerd.log" >&2
  die "dockerd did not start (log: $work/docker/dockerd.log)"
}

run_docker() {
  local start src base rust_root toolchain out sig key cert pub n
  start=$(date +%s)
  safe_rm "$work/docker"
  start_dockerd
  record "docker: start dockerd" "$(elapsed "$start")" ok

  # Local stand-ins for the Dockerfile's public base images.
  start=$(date +%s)
  base=$work/docker/base
  mkdir -p "$base"
  tar -C "$base" -xf "$base_tar"
  add_network_setup "$base"
  tar -C "$base" -c . | dk import - ks-cleanroom/debian:"$suite" >/dev/null
  # The rust image: the same root plus the host's default rustup toolchain
  # where the official image has it (RUSTUP_HOME=/usr/local/rustup,
  # CARGO_HOME=/usr/local/cargo), without its documentation.
  toolchain=$(readlink -f "$RUSTUP_DIR/toolchains/$(RUSTUP_HOME=$RUSTUP_DIR "$CARGO_BIN_DIR/rustup" default 2>/dev/null | awk '{print $1}')")
  [ -d "$toolchain" ] || die "cannot find the host's default rustup toolchain under $RUSTUP_DIR/toolchains"
  rust_root=$base
  mkdir -p "$rust_root/usr/local/rustup/toolchains" "$rust_root/usr/local/cargo/bin"
  tar -C "$(dirname "$toolchain")" --exclude='*/share/doc' -c "$(basename "$toolchain")" \
    | tar -C "$rust_root/usr/local/rustup/toolchains" -x
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
    "$(basename "$toolchain")" >"$rust_root/usr/local/rustup/settings.toml"
  cp "$CARGO_BIN_DIR/rustup" "$rust_root/usr/local/cargo/bin/rustup"
  for proxy in cargo rustc rustdoc cargo-fmt rustfmt cargo-clippy clippy-driver; do
    ln -sf rustup "$rust_root/usr/local/cargo/bin/$proxy"
  done
  tar -C "$rust_root" -c . | dk import \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - ks-cleanroom/rust:"$suite" >/dev/null
  safe_rm "$base"
  record "docker: local base images" "$(elapsed "$start")" ok

  # The README's commands, in a fresh clone (the build context is the clone).
  src=$work/docker/src
  git clone -q --no-local "$repo" "$src"
  git -C "$src" checkout -q --detach "$commit"
  start=$(date +%s)
  say "docker: \$ docker build -t libpkcs11ks --build-arg RUST_IMAGE=ks-cleanroom/rust:$suite --build-arg DEBIAN_IMAGE=ks-cleanroom/debian:$suite --network host ."
  if ! (cd "$src" && dk build --progress plain --network host \
      --build-arg RUST_IMAGE=ks-cleanroom/rust:"$suite" --build-arg DEBIAN_IMAGE=ks-cleanroom/debian:"$suite" \
      -t libpkcs11ks .); then
    record "docker: docker build -t libpkcs11ks ." "$(elapsed "$start")" FAILED
    return 1
  fi
  record "docker: docker build -t libpkcs11ks ." "$(elapsed "$start")" ok

  start=$(date +%s)
  say "docker: \$ docker run --rm -v \"\$PWD/output:/output\" libpkcs11ks   (with --network host)"
  if ! (cd "$src" && dk run --rm --name "$container" --network host -v "$PWD/output:/output" libpkcs11ks); then
    record "docker: docker run ... libpkcs11ks" "$(elapsed "$start")" FAILED
    return 1
  fi
  record "docker: docker run ... libpkcs11ks" "$(elapsed "$start")" ok

  # What the image promised: the artefacts and verified signatures.
  start=$(date +%s)
  out=$src/output
  for f in libpkcs11ks.so keyserver.so ksc conf/openssl-ks.cnf conf/ksc.conf tutorial/firmware.bin tutorial/summary.txt tutorial/signing-ca.pem; do
    [ -s "$out/$f" ] || { record "docker: output/ checks" "$(elapsed "$start")" FAILED; die "docker: output/$f is missing or empty"; }
  done
  n=0
  for sig in "$out"/tutorial/firmware.*.sig; do
    [ -e "$sig" ] || continue
    key=${sig%.sig}; key=${key##*.}   # firmware.<path>.<key>.sig
    cert=""
    for c in "$out/tutorial/$key.provider.cert.pem" "$out/tutorial/$key.pkcs11.cert.der"; do
      [ -f "$c" ] && cert=$c && break
    done
    [ -n "$cert" ] || die "docker: no certificate of $key in output/tutorial for $sig"
    pub=$work/docker/$key.pub.pem
    case $cert in
      *.der) openssl x509 -inform DER -in "$cert" -pubkey -noout >"$pub" ;;
      *) openssl x509 -in "$cert" -pubkey -noout >"$pub" ;;
    esac
    if ! openssl dgst -sha256 -verify "$pub" -signature "$sig" "$out/tutorial/firmware.bin" >/dev/null; then
      record "docker: output/ checks" "$(elapsed "$start")" FAILED
      die "docker: $sig does NOT verify with the host's openssl against $cert"
    fi
    n=$((n + 1))
  done
  [ $n -ge 2 ] || die "docker: expected the tutorial's signatures in output/tutorial, found $n"
  say "docker: $n signatures in output/tutorial verified with the host's $(openssl version | cut -d' ' -f1-2)"
  record "docker: output/ checks ($n signatures verified)" "$(elapsed "$start")" ok
  dk image rm -f libpkcs11ks ks-cleanroom/rust:"$suite" ks-cleanroom/debian:"$suite" >/dev/null 2>&1 || true
}

if [ "$mode" != docker ]; then
  run_room || failed=1
fi
if [ $failed -eq 0 ] && [ "$mode" != room ] && [ "$mode" != package ]; then
  run_docker || failed=1
fi
if [ $failed -ne 0 ]; then
  say "FAILED (see the stage times below and the output above)"
  exit 1
fi
say "all passed"
