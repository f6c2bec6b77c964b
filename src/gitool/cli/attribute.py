"""``gitool attribute``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli import options
from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config.attribute import AttributeOptions as D
from gitool.console import info


@app.command("attribute")
def attribute_command(
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Output .npz: hypothetical contributions (windows x tracks x bp x A,C,G,T), the sequences, coordinates and each window's completeness error. Appears only when complete; an existing file is refused unless --force.",
        ),
    ],
    method: Annotated[
        str,
        typer.Option(
            help="saliency (gradient; any model), integrated-gradients (completeness along the path; any model), deepliftshap (dinucleotide-shuffled references; exact for the CNN baselines, refused for attention models), or ism (every substitution, through `gitool variants --ism`; --regions only)."
        ),
    ] = D.method,
    model: options.NewestModel = None,
    regions: Annotated[
        Path | None,
        typer.Option(
            help="BED of regions; tiled into model windows as `gitool predict` does (for ism: each region mutated base by base, all of one length). Needs --genome."
        ),
    ] = None,
    genome: Annotated[
        Path | None, typer.Option("--genome", "-g", help="Genome FASTA for --regions.")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="A store: attribute windows of --split. Default, when no --regions or --fasta is given: the store the run was trained on."
        ),
    ] = None,
    split: options.Split = D.split,
    index: Annotated[
        str | None,
        typer.Option(
            help="Windows of --split, 0-based, e.g. 0,3,5-7. Default: all of --data; the first 4 of the run's own store when no input is given."
        ),
    ] = None,
    fasta: Annotated[
        Path | None,
        typer.Option(
            help="FASTA of sequences, each cut into consecutive windows of the model's input length."
        ),
    ] = None,
    head: options.Head = None,
    tracks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated track identifiers or 0-based indices to attribute toward (one backward pass each). Default: all tracks of a head of at most 8."
        ),
    ] = None,
    bins: Annotated[
        str | None,
        typer.Option(
            help="Target bins whose summed output is attributed, 0-based from each window's target start (a BED region's start), e.g. 38-41. Default: each window's own bins (a BED region's bins, not those past its end; every bin of a store window)."
        ),
    ] = None,
    steps: Annotated[
        int,
        typer.Option(
            help=ranged(D, "steps", "Integrated-gradients points along the path (Gauss-Legendre).")
        ),
    ] = D.steps,
    baseline: Annotated[
        str,
        typer.Option(
            help="Integrated-gradients baseline: zeros (all N) or uniform (0.25 at each known base, 0 at N)."
        ),
    ] = D.baseline,
    shuffles: Annotated[
        int,
        typer.Option(
            help=ranged(
                D, "shuffles", "Dinucleotide-shuffled references per window (deepliftshap)."
            )
        ),
    ] = D.shuffles,
    batch_size: Annotated[
        int, typer.Option(help=ranged(D, "batch_size", "Windows (or path steps) per pass."))
    ] = D.batch_size,
    device: options.Device = None,
    seed: Annotated[
        int, typer.Option(help=ranged(D, "seed", "Seed of the deepliftshap references."))
    ] = D.seed,
    bigwig: Annotated[
        str | None,
        typer.Option(
            help="Also write the per-base observed contribution (hypothetical x observed base) over the regions' target spans: this bigWig for one track, OUT.<identifier>.bw for several. Needs --regions."
        ),
    ] = None,
    logos: Annotated[
        int,
        typer.Option(
            help=ranged(
                D,
                "logos",
                "Draw sequence logos (logomaker) of this many windows with the largest contributions, each over its 60 bp that hold the most, toward the first track.",
            )
        ),
    ] = D.logos,
    logos_out: Annotated[
        Path | None, typer.Option(help="PNG for --logos. Default: OUT-stem.logos.png.")
    ] = None,
    which: options.Which = D.which,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace output files (.npz, bigWig, PNG) gitool wrote earlier and nobody changed since (listed in .gitool-made.jsonl beside them); never a file of the user's, never the inputs.",
        ),
    ] = D.force,
) -> None:
    """Which bases drive a prediction: per-base contributions toward chosen tracks and bins.

    `gitool attribute -o attr.npz` attributes test windows 0-3 of the newest run's store toward each track's summed target bins with integrated gradients, printing each default it chooses.

    The target is each chosen track's output summed over the chosen bins. Every method gives hypothetical contributions (what each of A, C, G, T would contribute at each position); the observed contribution is that of the base present. `gitool modisco` finds motifs in the .npz.
    """

    def text(path: Path | None) -> str | None:
        return None if path is None else str(path)

    chosen = D(
        out=str(out), method=method, model=text(model), regions=text(regions),
        genome=text(genome), data=text(data), split=split, index=index, fasta=text(fasta),
        head=head, tracks=tracks, bins=bins, steps=steps, baseline=baseline,
        shuffles=shuffles, batch_size=batch_size, device=device, seed=seed, bigwig=bigwig,
        logos=logos, logos_out=text(logos_out), which=which, force=force,
    )  # fmt: skip
    # lazy: keeps `gitool --help` from importing torch and captum
    from gitool.attribution.attribute import attribute

    summary = attribute(chosen)
    check = ""
    if summary.max_delta is not None:
        check = f"; largest completeness error {summary.max_delta:.3g}"
    info(
        f"[green]attributed[/] {summary.n_windows:,} window(s) toward "
        f"{len(summary.tracks)} track(s) with {summary.method} in {summary.seconds:.1f} s{check}"
    )
    for path in summary.paths:
        info(f"[green]wrote[/] {path}")
