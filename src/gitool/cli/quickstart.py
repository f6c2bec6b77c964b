"""``gitool quickstart``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli.app import app, click_command, option_names
from gitool.cli.options import ranged
from gitool.config.quickstart import QuickstartOptions as D
from gitool.console import state, stdout_console

# the commands whose work the quickstart's steps do, in order
STEP_COMMANDS = ("build-dataset", "train", "evaluate", "predict", "attention")


@app.command("quickstart")
def quickstart_command(
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Folder for everything the quickstart makes (data/, runs/swin/, runs/cnn-maxpool/, eval/, predictions/, attention/). Must be new or empty; with --force, an earlier quickstart folder.",
        ),
    ] = Path(D.out),
    steps: Annotated[
        int,
        typer.Option(
            help=ranged(
                D,
                "steps",
                "Optimizer steps for each of the two models. The default keeps the whole quickstart under 5 minutes on 2 CPU cores.",
            )
        ),
    ] = D.steps,
    example_data: Annotated[
        Path | None,
        typer.Option(
            help="The example_data/ folder of a gitool source checkout (with workflows/ beside it), or the checkout itself. Default: the one beside the installed gitool."
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="cpu or cuda. Default: cuda when available (training on one GPU, bf16), else cpu."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Reuse an earlier quickstart folder at --out, replacing the quickstart's own outputs in it once the new ones are made (a failed or stopped run puts them back; nothing else there is touched). Any other non-empty folder is refused.",
        ),
    ] = D.force,
) -> None:
    """Run the whole pipeline on the bundled example data (yeast genome, 7 tracks) in one folder.

    build-dataset → train a small Genomic Interpreter (workflows/example-swin.yaml) and a CNN baseline (workflows/example-cnn-maxpool.yaml) → evaluate both on the test split (prints the grouped table) → predict example_data/regions.bed to bigWig → export attention of one test window with PNG heatmaps; then prints where everything is and the commands to try next.
    """
    options = D(
        out=str(out), steps=steps, example_data=str(example_data) if example_data else None,
        device=device, force=force,
    )  # fmt: skip
    # lazy: keeps `gitool --help` from importing torch
    from gitool.quickstart import run_quickstart

    # each step's status lines and errors name the options of the command whose work it does
    # (build-dataset's --valid-chroms and GENOME, predict's --batch-size), not Python keywords
    own = dict(state.option_names)
    steps = {c: option_names(click_command(), [c]) for c in STEP_COMMANDS}

    def named(field: str) -> str:
        step = steps.get(state.command or "", {})
        return step.get(field) or own.get(field) or "--" + field.replace("_", "-")

    state.option_names = named
    summary = run_quickstart(options)
    stdout_console().print(summary.evaluation.table())
    stdout_console().print(summary.report(), markup=False, highlight=False, soft_wrap=True)
