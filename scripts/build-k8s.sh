#!/usr/bin/env bash
# Build kube-apiserver and kube-controller-manager v1.20.2 from Debian's source package
# (with --with-node also a real node's kubelet, kube-scheduler and the static pause).
#
# The slow path of the control-plane binary lookup (webhook/localcluster/tools.py), used only
# when $KUBEBUILDER_ASSETS, the cache dir and ../shared/k8s all lack the binaries.
# On a Debian bookworm machine (root, or sudo available) it:
#   1. adds deb-src entries mirroring the Debian deb entries, if none exist;
#   2. installs the build deps that are missing (never upgrades installed ones):
#      golang-go rsync jq make dpkg-dev golang-github-modern-go-reflect2-dev;
#   3. downloads the `kubernetes` source package and unpacks its .orig.tar.gz;
#   4. replaces vendor/github.com/modern-go/reflect2 (v1.0.1 crashes under Go >= 1.18)
#      with Debian's 1.0.2 sources;
#   5. runs make for the two commands, niced (6 min on an idle 2-core machine, 14 when busy;
#      --with-node adds cmd/kubelet and cmd/kube-scheduler, about 5 min more, and builds
#      build/pause/linux/pause.c with gcc -static);
#   6. checks that each binary runs and reports v1.20.2, then installs them into --out
#      (atomically, by rename) with a SHA256SUMS file.
# Idempotent: when --out already holds both binaries matching its SHA256SUMS it does
# nothing (--force rebuilds); a lock on --out serialises concurrent runs. It removes
# nothing outside its work dir, and the work dir only when it created it.
# --dry-run prints every command instead of running it and changes nothing.
set -euo pipefail

K8S_DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
K8S_VERSION="v1.20.2"
WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
BINARIES=(kube-apiserver kube-controller-manager)
PACKAGES=(golang-go rsync jq make dpkg-dev golang-github-modern-go-reflect2-dev)
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
SRC_LIST=/etc/apt/sources.list.d/oam-rollout-deb-src.sources
# The source tree's name inside the work dir. Its path ends up in the binaries' file
# tables, as does the build date (make honours SOURCE_DATE_EPOCH): with --workdir
# /tmp/k8s-src and SOURCE_DATE_EPOCH=1795656582 the build reproduces the team's
# prebuilt binaries (../shared/k8s/SHA256SUMS) byte for byte.
SRC_DIR="kubernetes-${K8S_VERSION#v}"

out="${XDG_CACHE_HOME:-$HOME/.cache}/oam-rollout/k8s-$K8S_VERSION"
workdir=""
dry_run=0
keep=0
force=0

usage() {
  cat <<USAGE
usage: scripts/build-k8s.sh [--out DIR] [--workdir DIR] [--with-node] [--keep] [--force] [--dry-run]
  --out DIR      where to install the binaries (default: $out)
  --workdir DIR  where to download and build (default: a new temp dir, removed afterwards)
  --with-node    also build kubelet, kube-scheduler and pause (a real node, see realnode.py)
  --keep         keep the build workdir
  --force        build even if --out already holds binaries matching its SHA256SUMS
  --dry-run      print the commands without running them
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || { echo "build-k8s: --out needs a directory" >&2; exit 2; }; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --workdir) [ $# -ge 2 ] || { echo "build-k8s: --workdir needs a directory" >&2; exit 2; }; workdir=$2; shift 2 ;;
    --workdir=*) workdir=${1#--workdir=}; shift ;;
    --keep) keep=1; shift ;;
    --with-node)
      WHAT="$WHAT cmd/kubelet cmd/kube-scheduler"
      BINARIES+=(kubelet kube-scheduler pause)
      PACKAGES+=(gcc libc6-dev)
      shift ;;
    --force) force=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-k8s: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "build-k8s: --out must not be empty" >&2; exit 2; }
# Relative paths would change meaning after the cd into the work dir.
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
if [ -n "$workdir" ]; then case "$workdir" in /*) ;; *) workdir="$PWD/$workdir" ;; esac; fi

run() {
  # Print, then run unless --dry-run: the log shows exactly what was done.
  echo "+ $*"
  if [ "$dry_run" = 0 ]; then "$@"; fi
}

as_root() {
  if [ "$(id -u)" = 0 ]; then run "$@"
  elif command -v sudo >/dev/null 2>&1; then run sudo "$@"
  else echo "build-k8s: needs root (or sudo) to run: $*" >&2; exit 2
  fi
}

already_built() {
  [ -f "$out/SHA256SUMS" ] || return 1
  for b in "${BINARIES[@]}"; do
    [ -x "$out/$b" ] || return 1
    grep -qE "  $b\$" "$out/SHA256SUMS" || return 1
  done
  (cd "$out" && sha256sum --quiet --check SHA256SUMS >/dev/null 2>&1)
}

if [ "$dry_run" = 0 ]; then
  if [ "$force" = 0 ] && already_built; then
    echo "build-k8s: $out already holds ${BINARIES[*]} matching its SHA256SUMS (--force rebuilds)"
    exit 0
  fi
  command -v apt-get >/dev/null 2>&1 || {
    echo "build-k8s: apt-get not found; this script builds on Debian bookworm only." >&2
    echo "  Alternatives: set KUBEBUILDER_ASSETS to a dir with kube-apiserver and" >&2
    echo "  kube-controller-manager v1.20.x, or put them in $out" >&2
    exit 2
  }
  # One build per --out at a time; a second run waits, then finds the binaries.
  mkdir -p "$out"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$out/.build.lock"
    flock 9
    if [ "$force" = 0 ] && already_built; then
      echo "build-k8s: $out was built by a concurrent run"
      exit 0
    fi
  fi
fi

# 1. deb-src entries, derived from the Debian deb entries (same mirrors and suites).
has_deb_src() {
  grep -rqsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/
}
deb_src_entries() {
  # deb822 stanzas of Debian's own archives, with Types: deb-src.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    [ "$f" = "$SRC_LIST" ] && continue
    awk 'BEGIN{RS=""; ORS="\n\n"} /URIs:[^\n]*debian/ && /Types:[^\n]*deb/ {
           gsub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f"
  done
  # One-line format.
  if [ -f /etc/apt/sources.list ]; then
    awk '$1=="deb" && $2 ~ /debian/ { $1="deb-src"; print }' /etc/apt/sources.list
  fi
}
need_update=0
if ! has_deb_src; then
  entries=$(deb_src_entries)
  if [ -z "$entries" ]; then
    echo "build-k8s: no Debian deb entry found to derive a deb-src entry from" >&2
    exit 2
  fi
  echo "+ write $SRC_LIST:"
  printf '%s\n' "$entries" | sed 's/^/    /'
  if [ "$dry_run" = 0 ]; then
    printf '%s\n' "$entries" | as_root tee "$SRC_LIST" >/dev/null
  fi
  need_update=1
fi

# 2. build dependencies: only the missing ones (a dry run lists them all), so a
#    machine that has them is neither upgraded nor needs the network for them.
missing=()
for p in "${PACKAGES[@]}"; do
  if [ "$dry_run" = 1 ] || ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] || need_update=1
# apt-get source needs the Sources index of the wanted version.
if [ "$dry_run" = 0 ] && ! apt-cache showsrc kubernetes 2>/dev/null | grep -qxF "Version: $K8S_DEB_VERSION"; then
  need_update=1
fi
if [ "$need_update" = 1 ]; then as_root apt-get update -qq; fi
if [ ${#missing[@]} -gt 0 ]; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade "${missing[@]}"
fi

# 3. the source package.
cleanup=0
if [ -z "$workdir" ]; then
  if [ "$dry_run" = 1 ]; then workdir="/tmp/build-k8s.XXXXXX"
  else workdir=$(mktemp -d /tmp/build-k8s.XXXXXX); cleanup=$((1 - keep)); fi
fi
# Only a work dir this run created with mktemp is ever removed.
if [ "$cleanup" = 1 ]; then trap 'rm -rf -- "$workdir"' EXIT; fi
run mkdir -p "$workdir/$SRC_DIR"
echo "+ cd $workdir"
if [ "$dry_run" = 0 ]; then cd "$workdir"; fi
# Skips the files already downloaded into the work dir (after checking them).
run apt-get source --download-only "kubernetes=$K8S_DEB_VERSION"
orig="kubernetes_${K8S_DEB_VERSION%%-*}.orig.tar.gz"
if [ "$dry_run" = 0 ] && [ ! -f "$orig" ]; then
  # The archive may compress the upstream tarball differently (.xz): take what came.
  orig=$(ls kubernetes_*.orig.tar.* | head -n 1)
fi
run tar -xf "$orig" -C "$SRC_DIR" --strip-components=1

# 4. reflect2 1.0.2 from Debian in place of the vendored 1.0.1.
vendor=$SRC_DIR/vendor/github.com/modern-go/reflect2
run rm -rf -- "$vendor"
run mkdir -p "$vendor"
echo "+ cp $REFLECT2_SRC/*.go $REFLECT2_SRC/*.s $vendor/"
if [ "$dry_run" = 0 ]; then
  cp "$REFLECT2_SRC"/*.go "$vendor"/
  cp "$REFLECT2_SRC"/*.s "$vendor"/ 2>/dev/null || true
  rm -f "$vendor/go.mod"
fi

# 5. build (make generates the openapi files a plain `go build` lacks). Niced: it may
#    run beside a test session on the same cores.
echo "+ cd $workdir/$SRC_DIR"
if [ "$dry_run" = 0 ]; then cd "$workdir/$SRC_DIR"; fi
run nice -n 10 make WHAT="$WHAT" KUBE_BUILD_PLATFORMS=linux/amd64 GOLDFLAGS="-s -w"
if [[ " ${BINARIES[*]} " == *" pause "* ]]; then
  # The pod sandbox's init: static, so it runs in an image holding nothing else.
  run gcc -Os -static -o _output/bin/pause build/pause/linux/pause.c
fi

# 6. check, then install with sums; rename makes a reader never see half a binary.
run mkdir -p "$out"
for b in "${BINARIES[@]}"; do
  [ "$b" = pause ] || echo "+ _output/bin/$b --version   # must say Kubernetes $K8S_VERSION"
  if [ "$dry_run" = 0 ] && [ "$b" != pause ]; then
    reported=$("_output/bin/$b" --version 2>&1 || true)
    if [ "$reported" != "Kubernetes $K8S_VERSION" ]; then
      echo "build-k8s: _output/bin/$b --version says '$reported', expected 'Kubernetes $K8S_VERSION'" >&2
      exit 1
    fi
  fi
  run install -m 0755 "_output/bin/$b" "$out/.$b.new"
  run mv -f "$out/.$b.new" "$out/$b"
done
echo "+ (cd $out && sha256sum <every binary there> > SHA256SUMS)"
if [ "$dry_run" = 0 ]; then
  # Sums of all the binaries in --out: a control-plane build leaves a node build's alone.
  (cd "$out" && present=() && for b in kube-apiserver kube-controller-manager kubelet \
     kube-scheduler pause; do [ -x "$b" ] && present+=("$b"); done \
   && sha256sum "${present[@]}" > .SHA256SUMS.new && mv -f .SHA256SUMS.new SHA256SUMS)
fi
echo "build-k8s: ${BINARIES[*]} installed in $out"
