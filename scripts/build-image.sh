#!/usr/bin/env bash
# Build the project's image from ./Dockerfile with podman, with no container registry.
#
# The Dockerfile's default base (python:3.11-slim) comes from a registry; where none is
# reachable this script makes the base itself and feeds pip from a wheelhouse:
#   1. base: a minimal Debian bookworm rootfs with python3 + python3-venv, made with
#      mmdebstrap from Debian's packages, imported into podman as
#      localhost/oam-rollout-base:<key> (the tar is cached; the key hashes the recipe);
#   2. wheelhouse: `pip wheel` on this host of the project's dependencies and build
#      backend, cached per pyproject.toml; the build mounts it read-only and runs with
#      --network=none, so nothing inside the build dials anywhere;
#   3. the image: localhost/oam-rollout:<key>, where the key hashes the build inputs
#      (Dockerfile, sources, base, wheelhouse); an image already holding that key is
#      reused as it is.
# Only the missing Debian packages (podman, mmdebstrap) are installed, never upgraded.
# Caches live in ${XDG_CACHE_HOME:-~/.cache}/oam-rollout/image; a lock serialises runs.
# runc cannot raise rlimits on some machines (no CAP_SYS_RESOURCE), so every container
# of the build runs with lowered ones (--ulimit nofile=1024:1024 --ulimit nproc=1024:1024).
#
# Progress goes to stderr; stdout gets one line, the image reference, ready for
# `podman run`, `podman save` or, with --save, `ctr images import`.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,passwd
REPOSITORY=localhost/oam-rollout
BASE_REPOSITORY=localhost/oam-rollout-base
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
# What the image is built from: the Dockerfile's COPY sources and the build recipe.
INPUTS=(Dockerfile .dockerignore pyproject.toml README.md webhook templates charts)

cache="${XDG_CACHE_HOME:-$HOME/.cache}/oam-rollout/image"
base_image=""
save=""
tag=""
rebuild=0

usage() {
  cat <<USAGE
usage: scripts/build-image.sh [--base-image IMAGE] [--tag REF] [--save FILE] [--rebuild]
  --base-image IMAGE  build on IMAGE (must be in podman's storage) instead of the local
                      Debian base this script makes
  --tag REF           also tag the image as REF (e.g. localhost/oam-rollout:dev)
  --save FILE         write the image as an OCI archive to FILE (for ctr images import)
  --rebuild           build even if an image with the same inputs exists
Caches: $cache
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --base-image) [ $# -ge 2 ] || { usage >&2; exit 2; }; base_image=$2; shift 2 ;;
    --tag) [ $# -ge 2 ] || { usage >&2; exit 2; }; tag=$2; shift 2 ;;
    --save) [ $# -ge 2 ] || { usage >&2; exit 2; }; save=$2; shift 2 ;;
    --rebuild) rebuild=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-image: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$save" in ""|/*) ;; *) save="$PWD/$save" ;; esac

say() { echo "build-image: $*" >&2; }
now() { date +%s.%N; }
began=$(now)
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# Debian packages: only the missing ones, never an upgrade.
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
if [ -z "$base_image" ]; then command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing: ${missing[*]} (install them with: sudo apt-get install ${missing[*]})"
    exit 2
  fi
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade "${missing[@]}" >&2
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

sha() { sha256sum | cut -c1-16; }

# 1. The base image.
if [ -z "$base_image" ]; then
  mmdebstrap_args=(
    --variant=essential --format=tar "--include=$BASE_PACKAGES"
    '--aptopt=APT::Install-Recommends "false"'
    '--dpkgopt=path-exclude=/usr/share/doc/*'
    '--dpkgopt=path-exclude=/usr/share/man/*'
    '--dpkgopt=path-exclude=/usr/share/info/*'
    '--dpkgopt=path-exclude=/usr/share/locale/*'
    "$SUITE"
  )
  base_key=$(printf '%s\n' "${mmdebstrap_args[@]}" | sha)
  base_image="$BASE_REPOSITORY:$base_key"
  base_tar="$cache/base-$base_key.tar"
  if podman image exists "$base_image"; then
    say "base $base_image (cached)"
  else
    if [ ! -s "$base_tar" ]; then
      mark=$(now)
      say "making a $SUITE rootfs with ${BASE_PACKAGES//,/, } (mmdebstrap, about a minute)"
      mmdebstrap "${mmdebstrap_args[@]}" "$base_tar.tmp" >"$cache/mmdebstrap.log" 2>&1 || {
        tail -20 "$cache/mmdebstrap.log" >&2
        rm -f "$base_tar.tmp"
        exit 1
      }
      mv -f "$base_tar.tmp" "$base_tar"
      say "rootfs made in $(elapsed "$mark")"
    fi
    podman import --change 'CMD ["/usr/bin/python3"]' "$base_tar" "$base_image" >/dev/null
    say "base $base_image imported from $base_tar"
  fi
else
  podman image exists "$base_image" || { say "no image $base_image in podman's storage"; exit 2; }
  base_key=$(podman image inspect --format '{{.Id}}' "$base_image" | cut -c1-16)
fi

# 2. The wheelhouse, built with a Python of the base's minor version (binary wheels).
base_python=$(podman run --rm --network=none "${ULIMITS[@]}" --entrypoint python3 "$base_image" \
  -c 'import sys; print("%d.%d" % sys.version_info[:2])')
host_python=""
for candidate in "${OAM_ROLLOUT_VENV:-.venv}/bin/python" "python$base_python" python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$base_python" ]; then
    host_python=$candidate
    break
  fi
done
if [ -z "$host_python" ]; then
  say "no python$base_python on this host to build the wheelhouse for the base's python$base_python"
  exit 2
fi
wheel_key=$( { cat pyproject.toml; echo "$base_python"; } | sha)
wheelhouse="$cache/wheelhouse-$wheel_key"
if [ -d "$wheelhouse" ]; then
  say "wheelhouse $wheelhouse (cached)"
else
  mark=$(now)
  pip_python=$host_python
  if ! "$pip_python" -m pip --version >/dev/null 2>&1; then
    # Debian's python3 has no pip: a throw-away venv brings one (ensurepip, offline).
    "$host_python" -m venv "$cache/pip-venv" >&2
    pip_python="$cache/pip-venv/bin/python"
  fi
  rm -rf "$wheelhouse.tmp"
  # The project's dependencies and its build backend (pip builds the project from source
  # inside the image). The project's own wheel is dropped: the image builds it.
  "$pip_python" -m pip wheel -q --disable-pip-version-check --wheel-dir "$wheelhouse.tmp" \
    . hatchling >&2
  rm -f "$wheelhouse.tmp"/oam_rollout-*.whl
  mv "$wheelhouse.tmp" "$wheelhouse"
  say "wheelhouse built in $(elapsed "$mark") ($(ls "$wheelhouse" | wc -l) wheels)"
fi

# 3. The image, named after its inputs.
inputs_key=$(
  {
    echo "base $base_key wheels $wheel_key"
    find "${INPUTS[@]}" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
      | sort -z | xargs -0 sha256sum
  } | sha
)
image="$REPOSITORY:$inputs_key"
if [ "$rebuild" = 0 ] && podman image exists "$image"; then
  say "image $image (cached, inputs unchanged)"
else
  mark=$(now)
  say "building $image from $ROOT/Dockerfile on $base_image"
  podman build --pull=never --network=none "${ULIMITS[@]}" \
    --volume "$wheelhouse:/wheelhouse:ro" \
    --build-arg "BASE_IMAGE=$base_image" \
    --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/wheelhouse \
    --label "dev.oam-rollout.inputs=$inputs_key" \
    --tag "$image" . >&2
  say "image built in $(elapsed "$mark")"
  # Each change of the sources makes a new image: keep the three newest.
  podman images --format '{{.Repository}}:{{.Tag}}' --sort created "$REPOSITORY" \
    | grep -E ':[0-9a-f]{16}$' | grep -vxF "$image" | tail -n +3 \
    | xargs -r podman rmi >/dev/null 2>&1 || true
fi
if [ -n "$tag" ]; then podman tag "$image" "$tag"; fi
if [ -n "$save" ]; then
  rm -f "$save.tmp"
  podman save --format oci-archive -o "$save.tmp" "$image" >&2
  mv -f "$save.tmp" "$save"
  say "saved to $save"
fi
say "done in $(elapsed "$began")"
echo "$image"
