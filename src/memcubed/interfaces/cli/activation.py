"""CLI commands for activation memory: ``cache`` plaintext into KV, ``chat`` with it injected."""

from __future__ import annotations

from typing import Annotated

import typer

from memcubed.errors import ConfigurationError
from memcubed.interfaces.api import Memcubed
from memcubed.interfaces.cli.render import console, emit, progress_bar, show_cube
from memcubed.interfaces.cli.state import handle_errors, state

__all__ = ["Model", "cache", "chat", "generate", "load_model"]

Model = Annotated[str | None, typer.Option("--model", help="a configured model id (MEMCUBED_MODELS; the packaged "
                                                           "SmolLM2 is `local`); the default model when omitted")]


def load_model(client: Memcubed, model: str | None, *, open_model: bool = True) -> None:
    """Load the configured model ``model`` now, behind a spinner, so the command's own progress starts at once.

    Raises:
        ValidationError: ``model`` is not a configured id.
        ConfigurationError: ``open_model`` and it is an API model.
    """
    models = client.kernel.models
    chosen = models.check(model, open_model=open_model)
    with console.status(f"loading model {chosen}"):
        models.open(chosen) if open_model else models.get(chosen)


@handle_errors
def cache(ctx: typer.Context, cube_ids: list[str], model: Model = None,
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
    client = cli.client()
    load_model(client, model)
    with progress_bar() as bar:
        task = bar.add_task("compiling KV", total=len(cube_ids))
        cube = client.cache(cube_ids, model=model, mode="exact" if mode == "exact" else "approximate",
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
def chat(ctx: typer.Context, question: str, model: Model = None,
         activation: Annotated[str | None, typer.Option(help="inject this activation cube, no search")] = None,
         namespace: Annotated[str, typer.Option("--namespace", "-n", help="memory space to recall from")] = "default",
         k: Annotated[int, typer.Option("-k", help="memories to recall (0: none)")] = 5,
         remember: Annotated[bool, typer.Option(help="store the question and the answer as memories")] = False,
         conversation: Annotated[str | None, typer.Option(help="conversation id for remembered turns")] = None,
         max_new_tokens: Annotated[int, typer.Option(help="tokens to generate")] = 64,
         compare: Annotated[bool, typer.Option(help="also re-read the memories as text to show the time saved")]
         = False,
         working_set: Annotated[bool, typer.Option("--working-set/--no-working-set",
                                                   help="lead with your working set of the namespace")] = True) -> None:
    """Answer a question with your memories injected into the model as KV (recalled, or an activation cube)."""
    cli = state(ctx)
    client = cli.client()
    load_model(client, model, open_model=False)
    if compare:  # a model's first forward pass pays one-off costs; time neither path with them
        client.generate("Hello", model=model, max_new_tokens=1)
    result = client.chat(question, model=model, namespace=namespace, k=k, activation_id=activation, remember=remember,
                         conversation=conversation, max_new_tokens=max_new_tokens, use_working_set=working_set)
    baseline_ms = _reread_ttft_ms(client, model, result.used, question) if compare and result.used else None
    if cli.json:
        emit({**result.model_dump(mode="json"), "reread_ttft_ms": baseline_ms})
        return
    print(result.text)
    recalled = ", ".join(u[:13] for u in result.used) or "nothing"
    line = (f"recalled {recalled} via {result.via} ({result.prefix_tokens} tokens, {result.reused_tokens} loaded"
            f" from stored KV, prefill {result.prefill_ms:.0f} ms); first token after {result.ttft_ms:.0f} ms")
    if baseline_ms is not None:
        line += f"; re-reading the text: {baseline_ms:.0f} ms"
    if result.working_set_id:
        line += f"; working set {result.working_set_id[:13]} first"
    elif result.working_set_skipped:
        line += f"; working set skipped ({result.working_set_skipped})"
    if result.remembered:
        line += f"; remembered {len(result.remembered)} turns"
    console.print(line, style="dim")
    for cube_id in result.used:  # where each memory came from: a turn, or the turns behind a fact
        turns = result.evidence.get(cube_id)
        behind = f" <- turns {', '.join(t[:13] for t in turns)}" if turns else ""
        console.print(f"  {cube_id}  {result.sources.get(cube_id, '')}{behind}", style="dim", markup=False,
                      highlight=False)


@handle_errors
def generate(ctx: typer.Context, query: str, model: Model = None,
             activation: Annotated[str | None, typer.Option(help="inject this activation cube's KV")] = None,
             max_new_tokens: Annotated[int, typer.Option(help="tokens to generate")] = 64) -> None:
    """Continue a text with an activation cube's KV injected (a closed model gets its sources as a prefix)."""
    cli = state(ctx)
    client = cli.client()
    load_model(client, model, open_model=False)
    result = client.generate(query, model=model, activation_id=activation, max_new_tokens=max_new_tokens)
    if cli.json:
        emit(result)
        return
    print(result.text)
    console.print(f"injected {', '.join(result.injected) or 'nothing'} ({result.prefix_tokens} tokens, loaded in "
                  f"{result.load_ms:.0f} ms); first token after {result.ttft_ms:.0f} ms", style="dim")


def _reread_ttft_ms(client: Memcubed, model: str | None, used: list[str], question: str) -> float:
    """Time to first token when the same memories are read as prompt text instead of injected."""
    texts = [client.get(cube_id).text or "" for cube_id in used]
    prompt = "\n\n".join([*texts, question])
    return client.generate(prompt, model=model, max_new_tokens=1).ttft_ms
