#!/usr/bin/env bash
# The test matrix: the whole suite (scripts/test.sh) and the five algorithms with only their
# mandatory parameters (scripts/algorithms.sh) on this machine's QGIS and in clean Debian
# chroots of trixie (QGIS 3.40 LTR, Python 3.13) and unstable (QGIS 3.44, Python 3.14).
#
#   bash scripts/matrix.sh                 # host, trixie, sid
#   bash scripts/matrix.sh trixie          # one target (host, trixie or sid)
#   bash scripts/matrix.sh --build trixie  # only make (or check) the cached chroot
#
# Needs root (debootstrap, chroot, bind mounts). Each chroot is made once with debootstrap from
# the Debian mirror named in this machine's apt sources and cached outside the clone, under
# $DEMSR_CHROOT_CACHE (default /var/cache/demsr-chroots); Debian packages and pip's downloads
# stay in it, so a warm run only copies the repository in afresh and runs the commands a user
# runs there: `bash scripts/test.sh` and `bash scripts/demo.sh` as README says, then
# scripts/algorithms.sh. A summary line per target ends the output, with each target's
# landforms class checksum, which must be the same everywhere. Logs: build/matrix/TARGET.log
# ($DEMSR_MATRIX_LOGS).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DEMSR_CHROOT_CACHE:-/var/cache/demsr-chroots}"
CHROOT_VERSION=1   # bump to rebuild every cached chroot
LOG_DIR="${DEMSR_MATRIX_LOGS:-$ROOT/build/matrix}"  # one log per target

build_only=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --build) build_only=1 ;;
    host|trixie|sid) targets+=("$arg") ;;
    *) echo "matrix: unknown argument '$arg'; use --build and any of: host trixie sid" >&2
       exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(host trixie sid)
if [ "$(id -u)" -ne 0 ] && [ "${targets[*]}" != "host" ]; then
  echo "matrix: the chroots need root (debootstrap, chroot, mount); run it with sudo" >&2
  exit 2
fi

# The Debian mirror this machine's apt uses (deb822 or one-line sources), not a guessed one.
host_mirror() {
  local uri
  uri="$(grep -hs -m1 -E '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources \
         | awk '{print $2}' | head -1)"
  [ -n "$uri" ] || uri="$(grep -hs -E '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]+/debian/? ' \
                         /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                         | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}' | head -1)"
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${DEMSR_DEBIAN_MIRROR:-$(host_mirror)}"

mounts_of() {  # mount points under a chroot, deepest first
  awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r
}

unmount_chroot() {
  local dir="$1" m
  for m in $(mounts_of "$dir"); do  # a path may be listed twice (stacked mounts)
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  [ -z "$(mounts_of "$dir")" ] || { echo "matrix: cannot unmount everything under $dir" >&2
                                    return 1; }
}

mount_chroot() {
  local dir="$1"
  unmount_chroot "$dir"
  mount --bind /proc "$dir/proc"
  mount --rbind /sys "$dir/sys" && mount --make-rslave "$dir/sys"
  mount --rbind /dev "$dir/dev" && mount --make-rslave "$dir/dev"  # /dev/shm, /dev/pts too
}

# The host's network settings, which pip and apt need inside: name resolution, the CA bundle
# (this network may inspect TLS: the host's bundle holds its CA) and any proxy.
copy_host_network() {
  local dir="$1"
  cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
  [ -f /etc/hosts ] && cp -L /etc/hosts "$dir/etc/hosts"
  cp -L /etc/ssl/certs/ca-certificates.crt "$dir/etc/demsr-host-ca.crt"
}

chroot_env() {  # a clean environment for commands in the chroot
  local env=(HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive
             PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
             PIP_CERT=/etc/demsr-host-ca.crt SSL_CERT_FILE=/etc/demsr-host-ca.crt
             REQUESTS_CA_BUNDLE=/etc/demsr-host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1
             PIP_DEFAULT_TIMEOUT=180)
  local v
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PYTHONWARNINGS; do
    [ -n "${!v:-}" ] && env+=("$v=${!v}")
  done
  printf '%s\n' "${env[@]}"
}

in_chroot() {  # in_chroot DIR COMMAND...
  local dir="$1"; shift
  local env=()
  mapfile -t env < <(chroot_env)
  env -i "${env[@]}" chroot "$dir" "$@"
}

build_chroot() {
  local suite="$1" dir="$CACHE/$1"
  local want="$suite $MIRROR v$CHROOT_VERSION"
  if [ "$(cat "$dir/.demsr-chroot" 2>/dev/null)" = "$want" ]; then
    echo "matrix: $suite chroot cached in $dir"
    return
  fi
  if [ -e "$dir" ]; then  # left half-made by an interrupted run, or made for another mirror
    echo "matrix: removing the incomplete or outdated $suite chroot $dir"
    unmount_chroot "$dir"
    rm -rf --one-file-system "$dir"
  fi
  mkdir -p "$CACHE"
  command -v debootstrap >/dev/null || {
    echo "matrix: installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
  }
  echo "matrix: debootstrap $suite from $MIRROR into $dir (once; several minutes)"
  # The archive keyring that ships with this Debian verifies trixie's and unstable's Release.
  debootstrap --variant=minbase --include=ca-certificates \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$suite" "$dir" "$MIRROR"
  # unstable's Release is re-signed daily and valid for a week; a mirror snapshot goes stale.
  echo 'Acquire::Check-Valid-Until "false";' > "$dir/etc/apt/apt.conf.d/99demsr-valid-until"
  # No daemon starts inside (a package's postinst would try).
  printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"
  chmod +x "$dir/usr/sbin/policy-rc.d"
  # The Debian packages (QGIS, GDAL, ...) of scripts/setup.sh's one list, cached in the chroot.
  copy_host_network "$dir"
  copy_repo "$dir"
  mount_chroot "$dir"
  trap 'unmount_chroot "'"$dir"'"' EXIT
  in_chroot "$dir" /bin/bash -c "apt-get update -qq && cd /root/demsr && bash scripts/setup.sh --apt"
  unmount_chroot "$dir"
  trap - EXIT
  echo "$want" > "$dir/.demsr-chroot"
}

# A clean copy of the working tree (tracked and new files that git does not ignore: no .venv,
# build/ or demo_output/) at /root/demsr in the chroot.
copy_repo() {
  local dir="$1" dest="$1/root/demsr"
  rm -rf --one-file-system "$dest"
  mkdir -p "$dest"
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
     | xargs -0 -I{} sh -c '[ -e "$1" ] && printf "%s\0" "$1"' _ {} \
     | tar --null -T - -cf -) | tar -xf - -C "$dest"
}

# What a user runs, as README says, then the five algorithms through qgis_process.
USER_COMMANDS='bash scripts/test.sh && bash scripts/demo.sh && bash scripts/algorithms.sh'

run_host() {
  (cd "$ROOT" && eval "$USER_COMMANDS")
}

run_chroot() {
  local suite="$1" dir="$CACHE/$1"
  build_chroot "$suite"
  [ "$build_only" -eq 1 ] && return
  copy_host_network "$dir"
  copy_repo "$dir"
  mount_chroot "$dir"
  trap 'unmount_chroot "'"$dir"'"' EXIT
  local rc=0
  in_chroot "$dir" /bin/bash -c "cd /root/demsr && $USER_COMMANDS" || rc=$?
  unmount_chroot "$dir"
  trap - EXIT
  return "$rc"
}

mkdir -p "$LOG_DIR"
# A cold matrix makes its chroots side by side (network and disk bound) while the host's suite
# runs (CPU bound); each chroot target waits for its own.
declare -A build_pid=()
for target in "${targets[@]}"; do
  [ "$target" = host ] && continue
  if [ "$(cat "$CACHE/$target/.demsr-chroot" 2>/dev/null)" != "$target $MIRROR v$CHROOT_VERSION" ]
  then
    echo "== matrix: making the $target chroot (log: $LOG_DIR/build-$target.log)"
    build_chroot "$target" > "$LOG_DIR/build-$target.log" 2>&1 &
    build_pid[$target]=$!
  fi
done
summary=()
status=0
for target in "${targets[@]}"; do
  log="$LOG_DIR/$target.log"
  start=$(date +%s)
  echo "== matrix: $target (log: $log)"
  rc=0
  if [ "$target" = host ]; then
    [ "$build_only" -eq 1 ] && continue
    run_host > >(tee "$log") 2>&1 || rc=$?
  else
    if [ -n "${build_pid[$target]:-}" ] && ! wait "${build_pid[$target]}"; then
      echo "matrix: making the $target chroot failed:"; tail -n 20 "$LOG_DIR/build-$target.log"
      rc=1
    else
      run_chroot "$target" > >(tee "$log") 2>&1 || rc=$?
    fi
  fi
  secs=$(( $(date +%s) - start ))
  qgis="$(grep -s -h -m1 '^algorithms: QGIS' "$log" | sed 's/^algorithms: //' || true)"
  classes="$(grep -s -h -m1 '^algorithms: landforms classes sha256' "$log" \
             | awk '{print $NF}' || true)"
  if [ "$rc" -eq 0 ]; then result=passed; else result="FAILED (exit $rc)"; status=1; fi
  [ "$build_only" -eq 1 ] && result="chroot ready"
  summary+=("$target: $result in ${secs}s${qgis:+; $qgis}${classes:+; landforms classes $classes}")
done
echo "== matrix summary"
printf '%s\n' "${summary[@]}"
if [ "$build_only" -eq 0 ]; then
  n=$(printf '%s\n' "${summary[@]}" | grep -o 'landforms classes [0-9a-f]*' | sort -u | wc -l)
  if [ "$n" -gt 1 ]; then
    echo "matrix: landforms classes differ between targets" >&2
    status=1
  fi
fi
exit "$status"
