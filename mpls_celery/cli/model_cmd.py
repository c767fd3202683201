"""`mpls model show MODEL`: the layers MPLS exchanges for a model (built-in or your own), with
their tensors, parameter counts and bytes on the wire — what peer × layer selection chooses from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mpls_celery.cli.output import console, print_json
from mpls_celery.config.run_config import RunConfig
from mpls_celery.errors import ConfigError
from mpls_celery.settings import load_settings

app = typer.Typer(help="Inspect models.", no_args_is_help=True)
# the shapes the built-ins are meant for (their datasets'), when no --dataset or --input-shape
NATURAL = {"lenet5": ((1, 28, 28), 10), "mlp": ((1, 28, 28), 10), "nin": ((3, 32, 32), 10),
           "resnet18": ((3, 32, 32), 100)}  # fmt: skip


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--input-shape {text!r}: use numbers like 1,28,28") from None
    if not shape or min(shape) < 1:
        raise ConfigError(f"--input-shape {text!r}: every size must be >= 1")
    return shape


@app.command("show")
def show(
    model: Annotated[str, typer.Argument(help="A built-in name, or package.module:factory.")],
    dataset: Annotated[
        str | None, typer.Option(help="Take the input shape and classes from this dataset.")
    ] = None,
    input_shape: Annotated[
        str | None, typer.Option(help="One sample's shape, e.g. 1,28,28 (instead of --dataset).")
    ] = None,
    classes: Annotated[int, typer.Option(min=1, help="Classes, with --input-shape.")] = 10,
    wire_dtype: Annotated[str, typer.Option(help="float32 | float16 | bfloat16.")] = "float32",
    seed: Annotated[int, typer.Option(help="The seed the model is built under.")] = 1,
    imports: Annotated[
        list[Path] | None, typer.Option("--import", help="A folder to import your code from.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the layers as JSON.")] = False,
) -> None:
    """List a model's exchanged layers (docs/algorithm.md, "What one layer is")."""
    import torch  # only when a model is built

    from mpls_celery.core.layering import layer_bytes
    from mpls_celery.experiment import WIRE_ITEMSIZE
    from mpls_celery.plugins import (
        add_import_dirs,
        checked_model,
        given_import_dirs,
        load_data,
        model_factory,
    )

    add_import_dirs([Path.cwd(), *given_import_dirs(imports)])
    cfg = RunConfig().with_overrides(model=model, wire_dtype=wire_dtype, seed=seed)
    trial = None  # data to try the model on: only real data says what it must take
    if input_shape is not None:
        shape, n_classes = parse_shape(input_shape), classes
    elif dataset is not None:
        data = load_data(
            cfg.with_overrides(dataset=dataset).dataset, load_settings().data_dir, seed
        )
        shape, n_classes = data.input_shape, data.num_classes
        trial = (data.train, torch.device("cpu"))
    elif model in NATURAL:
        shape, n_classes = NATURAL[model]
    else:
        raise ConfigError(f"model {model!r}: give --dataset or --input-shape (and --classes)")
    built, layers, _ = checked_model(model_factory(cfg.model), shape, n_classes, seed, model, trial)
    state = built.state_dict()
    sizes = layer_bytes(state, layers, WIRE_ITEMSIZE[cfg.wire_dtype])
    tensors = [{k.rsplit(".", 1)[-1]: list(state[k].shape) for k in layer.keys} for layer in layers]
    params = [int(sum(state[key].numel() for key in layer.keys)) for layer in layers]
    nbytes = [int(size) for size in sizes]
    rows = [
        {"layer": i, "name": layer.name, "tensors": tensors[i], "parameters": params[i],
         "bytes": nbytes[i]}
        for i, layer in enumerate(layers)
    ]  # fmt: skip
    if as_json:
        print_json({"model": model, "input_shape": shape, "classes": n_classes, "layers": rows})
        return
    total = sum(nbytes) or 1
    table = Table("#", "layer", "tensors", "parameters", f"bytes ({wire_dtype})", "share",
                  title=f"{model} · input {shape} · {n_classes} classes · {len(rows)} layers")  # fmt: skip
    for i, layer in enumerate(layers):
        shapes = " ".join(f"{k}{tuple(v)}" for k, v in tensors[i].items())
        table.add_row(str(i), layer.name, shapes, f"{params[i]:,}", f"{nbytes[i]:,}",
                      f"{100 * nbytes[i] / total:.1f} %")  # fmt: skip
    console.print(table)
    console.print(f"{sum(params):,} exchanged parameters, {total:,} bytes")
