"""Fused C kernels for the CPU, compiled on first use and called through ctypes.

On the CPU, a small model's elementwise work is dominated by per-op overhead and by passes over
memory: a decode step runs ~45 PyTorch ops per layer on a few KB each, and autograd's RMSNorm
backward alone is ~10 ops. ``csrc/decode.c`` and ``csrc/train.c`` (helpers in
``csrc/simd.h``) do that work in single passes:

* decode (`KVDecoder`): a layer's non-matmul work in four calls - residual add + RMSNorm,
  rotary + K/V write, attention over the cache, SiLU * up; calls larger than `PARALLEL_MIN`
  floats per extra thread are split over rows across torch's thread count (`_split`);
* training (`fused_modules`, when torch runs on one thread): RMSNorm, SiLU(gate) * up, rotary
  and attention, forward and backward, as autograd functions; and the transposed copies of the
  oneDNN linear backward (`cpu_kernels`).

The matmuls stay with oneDNN / PyTorch. Results equal the PyTorch ops up to float32 rounding
(~1e-7 relative; tested).

The sources are compiled once per machine with the system C compiler (``$CC`` or ``cc``;
``-O3 -march=native``) into ``$R1LAB_CACHE/kernels/`` (default ``~/.cache/r1lab``), under a name
that hashes the sources, the flags, the compiler's version and the CPU's flags, written
atomically (concurrent ranks may race; the last rename wins with identical bytes).
``R1LAB_CPU_FUSED`` chooses: ``auto`` (default: use the kernels when they build, else log a
warning once and keep the PyTorch ops), ``c`` (raise if they cannot be built), ``torch``
(never use them).

Shapes (every tensor contiguous float32 on the CPU; see the C files): decode - x, y (B, H);
qkv (B, (nh + 2 nkv) hd); cos, sin (B, S, hd); q (B, nh, hd); keys transposed kt
(B, nkv, hd, Sp), Sp = S rounded up to 16; values (B, nkv, S, hd); key_ok (B, S) bool;
attention out (B, nh hd); gu (B, 2 I). Training - x, y, dy, dx (rows, H), inv (rows,); g, u,
dg, du of any shape; q (B, nh, T, hd), k / v (B, nkv, S, hd), mask (B or 1, T, S) uint8.
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

ENV = "R1LAB_CPU_FUSED"
MODES = ("auto", "c", "torch")
CSRC = Path(__file__).with_name("csrc")
SOURCES = (CSRC / "decode.c", CSRC / "train.c")  # both include csrc/simd.h
HEADERS = (CSRC / "simd.h",)
FLAGS = ("-O3", "-ffp-contract=off", "-fPIC", "-shared", "-std=gnu11")
NATIVE = ("-march=native",)

_P, _I, _F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
_SIGNATURES = {
    "r1_add_rmsnorm": (_P, _P, _P, _F, _P, _I, _I),
    "r1_rope_store": (_P, _P, _P, _I, _P, _P, _P, _I, _I, _I, _I, _I, _I),
    "r1_attn_decode": (_P, _P, _P, _P, _I, _F, _P, _P, _I, _I, _I, _I, _I, _I),
    "r1_silu_mul": (_P, _P, _I, _I),
    "r1_swiglu_fwd": (_P, _P, _P, _I),
    "r1_swiglu_bwd": (_P, _P, _P, _P, _P, _I),
    "r1_rmsnorm_fwd": (_P, _P, _F, _P, _P, _I, _I),
    "r1_rmsnorm_bwd": (_P, _P, _P, _P, _P, _P, _I, _I),
    "r1_transpose": (_P, _I, _I, _I, _P),
    "r1_attn_fwd": (_P, _P, _P, _P, _I, _F, _P, _P, _P, _I, _I, _I, _I, _I, _I),
    "r1_attn_bwd": (_P, _P, _P, _P, _I, _F, _P, _P, _P, _P, _P, _P, _P, _I, _I, _I, _I, _I, _I),
    "r1_rope_fwd": (_P, _I, _P, _P, _I, _P, _I, _I, _I, _I),
    "r1_rope_bwd": (_P, _P, _P, _I, _P, _I, _I, _I, _I),
}


class KernelBuildError(RuntimeError):
    """The decode kernels could not be compiled or loaded."""


def mode() -> str:
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{ENV}={value!r}: expected one of {', '.join(MODES)}")
    return value


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
    out = (cache_dir or cache_root() / "kernels") / f"cpu_fused-{key}.so"
    if not out.exists():
        _compile(cc, out)
        log.info("compiled the fused CPU kernels: %s", out)
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
    """The loaded library; each method takes tensors (see the module docstring for shapes). The
    decode kernels split large calls over rows across threads (`_split`); the training kernels
    run on one thread (`fused_modules` uses them only when torch runs on one)."""

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

    # decode (kv_decode.py)

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

    # training (fused_modules.py, one thread only); g, u, ... contiguous of any shape (flat)

    def swiglu_fwd(self, g, u, y) -> None:
        """y = silu(g) * u."""
        self._lib.r1_swiglu_fwd(g.data_ptr(), u.data_ptr(), y.data_ptr(), g.numel())

    def swiglu_bwd(self, dy, g, u, dg, du) -> None:
        """dg, du of y = silu(g) * u."""
        self._lib.r1_swiglu_bwd(
            dy.data_ptr(), g.data_ptr(), u.data_ptr(), dg.data_ptr(), du.data_ptr(), g.numel()
        )

    def rmsnorm_fwd(self, x, w, eps: float, y, inv) -> None:
        """x, y (rows, H); inv (rows,) gets rsqrt(mean(x^2) + eps)."""
        rows, H = x.shape
        self._lib.r1_rmsnorm_fwd(
            x.data_ptr(), w.data_ptr(), eps, y.data_ptr(), inv.data_ptr(), rows, H
        )

    def rmsnorm_bwd(self, dy, x, w, inv, dx, dw_acc) -> None:
        """dx (rows, H); dw_acc (H,) float64, zeroed: += the weight gradient."""
        rows, H = x.shape
        self._lib.r1_rmsnorm_bwd(
            dy.data_ptr(), x.data_ptr(), w.data_ptr(), inv.data_ptr(), dx.data_ptr(),
            dw_acc.data_ptr(), rows, H,
        )  # fmt: skip

    def attn_fwd(self, q, k, v, mask, scale: float, out, lse) -> None:
        """q (B, nh, T, hd), k / v (B, nkv, S, hd), mask (B or 1, T, S) uint8 -> out (B, T, nh,
        hd), lse (B, nh, T)."""
        B, nh, T, hd = q.shape
        nkv, S = k.size(1), k.size(2)
        scratch = _scratch(hd, S)  # held here: a temporary's memory is freed before the call
        self._lib.r1_attn_fwd(
            q.data_ptr(), k.data_ptr(), v.data_ptr(), mask.data_ptr(), _bs(mask), scale,
            out.data_ptr(), lse.data_ptr(), scratch.data_ptr(), B, nh, nkv, T, S, hd,
        )  # fmt: skip

    def attn_bwd(self, q, k, v, mask, scale: float, out, dout, lse, dq, dk, dv) -> None:
        """dq (B, nh, T, hd); dk, dv (B, nkv, S, hd) zeroed: the attention gradients."""
        B, nh, T, hd = q.shape
        nkv, S = k.size(1), k.size(2)
        scratch = _scratch(hd, S)
        self._lib.r1_attn_bwd(
            q.data_ptr(), k.data_ptr(), v.data_ptr(), mask.data_ptr(), _bs(mask), scale,
            out.data_ptr(), dout.data_ptr(), lse.data_ptr(), dq.data_ptr(), dk.data_ptr(),
            dv.data_ptr(), scratch.data_ptr(), B, nh, nkv, T, S, hd,
        )  # fmt: skip

    def rope_fwd(self, x, cos, sin, y) -> None:
        """x (B, T, n hd) -> y (B, n, T, hd) rotated; cos / sin (B or 1, T, hd)."""
        B, n, T, hd = y.shape
        self._lib.r1_rope_fwd(
            x.data_ptr(), x.stride(1), cos.data_ptr(), sin.data_ptr(), _bs(cos), y.data_ptr(),
            B, T, n, hd,
        )  # fmt: skip

    def rope_bwd(self, dy, cos, sin, dx) -> None:
        """dy (B, n, T, hd) -> dx (B, T, n hd)."""
        B, n, T, hd = dy.shape
        self._lib.r1_rope_bwd(
            dy.data_ptr(), cos.data_ptr(), sin.data_ptr(), _bs(cos), dx.data_ptr(), B, T, n, hd
        )

    def transpose(self, src: torch.Tensor) -> torch.Tensor:
        """A contiguous copy of ``src.t()`` for a 2-D float32 ``src`` with unit column stride
        (one thread)."""
        rows, cols = src.shape
        dst = torch.empty((cols, rows), dtype=src.dtype)
        self._lib.r1_transpose(src.data_ptr(), rows, cols, src.stride(0), dst.data_ptr())
        return dst


def _bs(t: torch.Tensor) -> int:
    """Batch stride of a (B or 1, ...) operand: 0 when one slice serves every row."""
    return 0 if t.size(0) == 1 else t.stride(0)


def _scratch(hd: int, S: int) -> torch.Tensor:
    Sp = (S + 15) // 16 * 16
    return torch.empty(2 * hd * Sp + 2 * Sp, dtype=torch.float32)


@functools.cache
def load() -> Kernels | None:
    """The kernels for this process, or None (mode ``torch``, or ``auto`` when they cannot be
    built: logged once). Raises `KernelBuildError` in mode ``c`` when they cannot be built."""
    chosen = mode()
    if chosen == "torch":
        return None
    try:
        return Kernels(build())
    except (KernelBuildError, OSError) as e:
        if chosen == "c":
            raise
        log.warning("fused CPU kernels unavailable, using PyTorch ops instead: %s", e)
        return None


def for_training() -> Kernels | None:
    """The kernels for a training op now, or None: the training kernels are single-threaded,
    so they apply only while torch runs on one thread (with more, PyTorch's parallel ops were as
    fast or faster here: tiny-model pretraining at 2 threads, 13.5 s vs 14.8 - 16.1 s per 60
    steps), and never in mode ``torch``."""
    if torch.get_num_threads() > 1 or mode() == "torch":
        return None
    return load()


def usable(*tensors: torch.Tensor) -> bool:
    """True when every tensor is a contiguous float32 CPU tensor (the kernels' only input)."""
    return all(
        t.device.type == "cpu" and t.dtype is torch.float32 and t.is_contiguous() for t in tensors
    )
