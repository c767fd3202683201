"""`mpls profile show NAME`: the link-speed matrix summarised, and each worker's compute speed;
`mpls profile fit RUN_DIR -o FILE`: a profile fitted to a real run's trace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
import yaml
from rich.table import Table

from mpls_celery.cli.output import console, print_json
from mpls_celery.config.profile_fit import fit_profile
from mpls_celery.config.profiles import load_profile
from mpls_celery.core.network_profile import MBIT
from mpls_celery.errors import ConfigError
from mpls_celery.sim.recorded_run import load_recorded_run

app = typer.Typer(help="Inspect network/compute profiles.", no_args_is_help=True)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="uniform | random | paper30 | path to a YAML file")],
    workers: Annotated[int, typer.Option(min=1, help="Number of workers N.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed for random profiles.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Describe a profile: link speeds (Mbit/s) and relative compute speeds."""
    profile = load_profile(name, workers, seed)
    if profile is None:
        raise ConfigError("profile 'none' means no emulation: the runtime measures real links")
    mbit = profile.base_rate / MBIT
    off_diag = mbit[~np.eye(workers, dtype=bool)] if workers > 1 else np.zeros(1)
    rows = [
        {
            "worker": w,
            "device": profile.devices[w] if profile.devices else "",
            "compute_speed": round(float(profile.compute_speed[w]), 4),
            "mean_link_mbit": round(float(np.delete(mbit[w], w).mean()) if workers > 1 else 0, 3),
        }
        for w in range(workers)
    ]
    links = {
        "min": float(off_diag.min()),
        "mean": float(off_diag.mean()),
        "max": float(off_diag.max()),
    }
    summary = {
        "name": profile.name,
        "workers": workers,
        "link_mbit": links,
        "noise_sigma": profile.noise_sigma,
        "outage_prob": profile.outage_prob,
        "workers_detail": rows,
    }
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{profile.name}: {workers} workers; links {links['min']:.2f} / {links['mean']:.2f} / "
        f"{links['max']:.2f} Mbit/s (min/mean/max); noise σ={profile.noise_sigma}, "
        f"outage p={profile.outage_prob}"
    )
    table = Table("worker", "device", "compute", "mean link Mbit/s")
    for row in rows:
        table.add_row(
            str(row["worker"]),
            str(row["device"]),
            f"{row['compute_speed']:.3f}",
            f"{row['mean_link_mbit']:.2f}",
        )
    console.print(table)


@app.command("fit")
def fit(
    run_dir: Annotated[Path, typer.Argument(help="A run directory of `mpls up`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the profile YAML.")],
    name: Annotated[str | None, typer.Option(help="Profile name (default: fitted-<run>).")] = None,
) -> None:
    """Fit a network profile to a run's measured links and compute times."""
    recorded = load_recorded_run(run_dir)
    cfg = recorded.config
    profile = fit_profile(
        recorded.trace, name or f"fitted-{run_dir.name}", cfg.model, cfg.training.local_steps
    )
    if out.exists() and out.is_dir():
        raise ConfigError(f"{out} is a directory; give a file name for the profile")
    out.write_text(yaml.safe_dump(profile, sort_keys=False))
    links = profile["links"]
    console.print(
        f"{out}: {profile['workers']} workers, {len(links)} measured links "
        f"(median {profile['default_mbit']:.2f} Mbit/s), noise σ {profile['dynamics']['noise_sigma']}"
        f", outage p {profile['dynamics']['outage_prob']} — use it with --profile {out}"
    )
