"""CLI commands for activation memory: ``cache`` plaintext into KV, ``chat`` with it injected."""

from __future__ import annotations

from typing import Annotated

import typer

from memcubed.backends.models import LocalTransformersLM, make_language_model
from memcubed.backends.models.base import KVLanguageModel
from memcubed.errors import ConfigurationError
from memcubed.interfaces.cli.render import console, emit, progress_bar, show_cube
from memcubed.interfaces.cli.state import handle_errors, state

__all__ = ["cache", "chat"]

Model = Annotated[str, typer.Option("--model", help="local (packaged SmolLM2) or local:<hub name or folder>")]


def _open_model(spec: str) -> KVLanguageModel:
    with console.status(f"loading model {spec}"):
        lm = make_language_model(spec)
    if not isinstance(lm, LocalTransformersLM):
        raise ConfigurationError("KV injection needs an open local model (local or local:<model>)", field="model")
    return lm


@handle_errors
def cache(ctx: typer.Context, cube_ids: list[str], model: Model = "local",
          mode: Annotated[str, typer.Option(help="exact (default) or approximate")] = "exact",
          bf16: Annotated[bool, typer.Option("--bf16", help="store the KV in bfloat16 (half the bytes)")] = False,
          background: Annotated[bool, typer.Option("--background", help="queue it as a job for `memcubed worker`"
                                                    " and print the job")] = False) -> None:
    """Compile plaintext cubes into one activation cube (a KV-cache of the model)."""
    cli = state(ctx)
    if mode not in ("exact", "approximate"):
        raise ConfigurationError("mode must be exact or approximate", field="mode")
    if background:
        job = cli.client().submit_job("cache", cube_ids=cube_ids, model=model, mode=mode,
                                      storage_dtype="bfloat16" if bf16 else "float32")
        emit(job) if cli.json else print(f"queued job {job.id}; follow it with: memcubed jobs wait {job.id}")
        return
    lm = _open_model(model)
    with progress_bar() as bar:
        task = bar.add_task("compiling KV", total=len(cube_ids))
        cube = cli.client().cache(cube_ids, lm=lm, mode="exact" if mode == "exact" else "approximate",
                                  storage_dtype="bfloat16" if bf16 else "float32",
                                  progress=lambda done, total: bar.update(task, completed=done, total=total))
    if cli.json:
        emit(cube)
    else:
        show_cube(cube)
        meta = cube.meta
        print(f"{meta['tokens']} tokens, {meta['bytes'] / 1e6:.1f} MB of KV; segments reused {meta['reused']},"
              f" computed {meta['computed']} in {meta['compile_s']} s")


@handle_errors
def chat(ctx: typer.Context, query: str, model: Model = "local",
         activation: Annotated[str | None, typer.Option(help="activation cube to inject")] = None,
         max_new_tokens: Annotated[int, typer.Option(help="tokens to generate")] = 64,
         compare: Annotated[bool, typer.Option(help="also re-read the text to show the time saved")] = False) -> None:
    """Generate an answer with an activation cube's KV injected into the model."""
    cli = state(ctx)
    lm = _open_model(model)
    client = cli.client()
    result = client.generate(query, activation_id=activation, lm=lm, max_new_tokens=max_new_tokens)
    baseline_ms = None
    if compare and activation is not None:
        from memcubed.engines.kvcache import KVCacheEngine

        engine = KVCacheEngine(lm)
        prefix = engine.load(client.get(activation).meta["segments"], client.kernel.blobs)
        baseline_ms = lm.greedy(engine.query_ids(prefix, query), max_new_tokens=1).ttft_s * 1000
    if cli.json:
        emit({**result.model_dump(mode="json"), "reread_ttft_ms": baseline_ms})
        return
    print(result.text)
    injected = ", ".join(result.injected) or "nothing"
    line = f"injected {injected} ({result.prefix_tokens} tokens, loaded in {result.load_ms:.0f} ms);" \
           f" first token after {result.ttft_ms:.0f} ms"
    if baseline_ms is not None:
        line += f"; re-reading: {baseline_ms:.0f} ms ({baseline_ms / max(result.ttft_ms, 1e-6):.1f}x slower)"
    console.print(line, style="dim")
