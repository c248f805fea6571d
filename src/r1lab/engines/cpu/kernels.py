"""Fused C kernels for the KV decode step on the CPU, compiled on first use, called via ctypes.

At decode time every op sees a (rows, hidden) activation of a few KB, so a tiny model's step
costs the fixed overhead of ~45 PyTorch ops per layer, not their arithmetic. ``csrc/decode.c``
(helpers in ``csrc/simd.h``) does a layer's non-matmul work in four calls for `KVDecoder`:
residual add + RMSNorm, rotary + K/V write, attention over the cache, SiLU * up. Calls larger
than `PARALLEL_MIN` floats per extra thread are split over rows across torch's thread count
(`_split`). The matmuls stay with PyTorch (or oneDNN, `linear`). Results equal the PyTorch ops
up to float32 rounding (~1e-7 relative; tested).

The sources are compiled once per machine with the system C compiler (``$CC`` or ``cc``;
``-O3 -march=native``) into ``$R1LAB_CACHE/kernels/`` (default ``~/.cache/r1lab``), under a name
that hashes the sources, the flags, the compiler's version and the CPU's flags, written
atomically (concurrent ranks may race; the last rename wins with identical bytes). The switch
``R1LAB_CPU`` (`r1lab.engines.cpu.mode`): ``auto`` uses them when they build (else logs a
warning once and keeps the PyTorch ops), ``on`` raises when they cannot be built, ``off`` never
uses them.

Shapes (every tensor contiguous float32 on the CPU; see decode.c): x, y (B, H);
qkv (B, (nh + 2 nkv) hd); cos, sin (B, S, hd); q (B, nh, hd); keys transposed kt
(B, nkv, hd, Sp), Sp = S rounded up to 16; values (B, nkv, S, hd); key_ok (B, S) bool;
attention out (B, nh hd); gu (B, 2 I).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from r1lab.utils.paths import cache_root

log = logging.getLogger(__name__)

CSRC = Path(__file__).with_name("csrc")
SOURCES = (CSRC / "decode.c",)
HEADERS = (CSRC / "simd.h",)
FLAGS = ("-O3", "-ffp-contract=off", "-fPIC", "-shared", "-std=gnu11")
NATIVE = ("-march=native",)

_P, _I, _F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
_SIGNATURES = {
    "r1_add_rmsnorm": (_P, _P, _P, _F, _P, _I, _I),
    "r1_rope_store": (_P, _P, _P, _I, _P, _P, _P, _I, _I, _I, _I, _I, _I),
    "r1_attn_decode": (_P, _P, _P, _P, _I, _F, _P, _P, _I, _I, _I, _I, _I, _I),
    "r1_silu_mul": (_P, _P, _I, _I),
}


class KernelBuildError(RuntimeError):
    """The decode kernels could not be compiled or loaded."""


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise KernelBuildError("no C compiler found (set $CC or install gcc / clang)")
    return cc


def _version(cc: str) -> str:
    try:
        res = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
        return res.stdout.splitlines()[0] if res.stdout else cc
    except (OSError, subprocess.SubprocessError) as e:
        raise KernelBuildError(f"{cc} --version failed: {e}") from e


def _compile(cc: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for extra in (NATIVE, ()):  # some compilers (e.g. on ARM macOS) refuse -march=native
        with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".so", delete=False) as tmp:
            tmp_path = Path(tmp.name)
        cmd = [cc, *FLAGS, *extra, "-o", str(tmp_path), *map(str, SOURCES), "-lm"]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as e:
            res = None
            errors.append(f"{' '.join(cmd)}: {e}")
        if res is not None and res.returncode == 0:
            os.replace(tmp_path, out)
            return
        if res is not None:
            errors.append(f"{' '.join(cmd)}:\n{res.stderr.strip()[-2000:]}")
        tmp_path.unlink(missing_ok=True)
    raise KernelBuildError("compiling the decode kernels failed:\n" + "\n".join(errors))


def build(cache_dir: Path | None = None) -> Path:
    """Compile (or find) the shared library; its path."""
    cc = _compiler()
    key = hashlib.sha256(
        "\n".join(
            [*(f.read_text() for f in SOURCES + HEADERS), " ".join(FLAGS + NATIVE), _version(cc)]
            + [_cpu_flags()]
        ).encode()
    ).hexdigest()[:16]
    out = (cache_dir or cache_root() / "kernels") / f"cpu_decode-{key}.so"
    if not out.exists():
        _compile(cc, out)
        log.info("compiled the CPU decode kernels: %s", out)
    return out


PARALLEL_MIN = 1 << 21  # floats (8 MB) a call touches per extra thread before it is split


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="r1lab-kernels")


def _split(n: int, work: int, call) -> None:
    """``call(i, lo, hi)`` over row chunks of [0, n): one chunk, or up to
    ``torch.get_num_threads()`` chunks in parallel when the call touches at least
    `PARALLEL_MIN` floats per chunk (ctypes releases the GIL, so the chunks run at once)."""
    k = min(torch.get_num_threads(), n, work // PARALLEL_MIN)
    if k <= 1:
        call(0, 0, n)
        return
    bounds = [n * i // k for i in range(k + 1)]
    pool = _pool(k - 1)
    futures = [pool.submit(call, i, bounds[i], bounds[i + 1]) for i in range(1, k)]
    call(0, bounds[0], bounds[1])
    for f in futures:
        f.result()


def _p(t: torch.Tensor | None, lo: int = 0) -> int | None:
    """Address of row ``lo`` of ``t`` (None stays None)."""
    if t is None:
        return None
    return t.data_ptr() + lo * t.stride(0) * t.element_size()


class Kernels:
    """The loaded library; each method takes tensors (see the module docstring for shapes) and
    splits large calls over rows across threads (`_split`)."""

    def __init__(self, path: Path) -> None:
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as e:
            raise KernelBuildError(f"loading {path}: {e}") from e
        for name, args in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, None
        self._lib = lib
        self.path = path

    def add_rmsnorm(self, x, delta, w, eps: float, y) -> None:
        """x += delta (in place; skipped when delta is None), y = RMSNorm(x) * w."""
        B, H = x.shape
        fn = self._lib.r1_add_rmsnorm
        _split(B, 3 * B * H, lambda i, lo, hi: fn(
            _p(x, lo), _p(delta, lo), w.data_ptr(), eps, _p(y, lo), hi - lo, H
        ))  # fmt: skip

    def rope_store(self, qkv, cos, sin, slot: int, q_out, kt, vbuf) -> None:
        """Rotary on q -> q_out (B, nh, hd) and k -> kt[:, :, :, slot]; v -> vbuf[:, :, slot]."""
        B, nkv, S, hd = vbuf.shape
        fn = self._lib.r1_rope_store
        _split(B, 2 * qkv.numel(), lambda i, lo, hi: fn(
            _p(qkv, lo), _p(cos, lo), _p(sin, lo), slot, _p(q_out, lo), _p(kt, lo), _p(vbuf, lo),
            hi - lo, q_out.size(1), nkv, hd, S, kt.size(-1),
        ))  # fmt: skip

    def attn_decode(self, q, kt, vbuf, key_ok, end: int, scale: float, out, scratch) -> None:
        """out (B, nh * hd) = attention of q (B, nh, hd) over key slots :end (scratch: Sp)."""
        B, nkv, S, hd = vbuf.shape
        fn = self._lib.r1_attn_decode

        def call(i, lo, hi):
            buf = scratch if i == 0 else torch.empty_like(scratch)
            fn(
                _p(q, lo), _p(kt, lo), _p(vbuf, lo), _p(key_ok, lo), end, scale, _p(out, lo),
                buf.data_ptr(), hi - lo, q.size(1), nkv, hd, S, kt.size(-1),
            )  # fmt: skip

        _split(B, 2 * B * nkv * end * hd, call)

    def silu_mul(self, gu, out) -> None:
        B, I2 = gu.shape
        fn = self._lib.r1_silu_mul
        _split(B, 3 * B * I2 // 2, lambda i, lo, hi: fn(_p(gu, lo), _p(out, lo), hi - lo, I2 // 2))


@functools.cache
def load() -> Kernels | None:
    """The kernels for this process, or None (``R1LAB_CPU=off``, or ``auto`` when they cannot be
    built: logged once). Raises `KernelBuildError` with ``on`` when they cannot be built."""
    from r1lab.engines.cpu import mode

    chosen = mode()
    if chosen == "off":
        return None
    try:
        return Kernels(build())
    except (KernelBuildError, OSError) as e:
        if chosen == "on":
            raise
        log.warning("CPU decode kernels unavailable, using PyTorch ops instead: %s", e)
        return None


def usable(*tensors: torch.Tensor) -> bool:
    """True when every tensor is a contiguous float32 CPU tensor (the kernels' only input)."""
    return all(
        t.device.type == "cpu" and t.dtype is torch.float32 and t.is_contiguous() for t in tensors
    )
