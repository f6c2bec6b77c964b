"""``gitool quickstart``: the whole pipeline on the bundled example data, in one folder.

On ``example_data/`` (the real yeast genome and 7 tracks derived from it) it runs, in a
fresh folder ``OUT``:

1. ``build-dataset`` → ``OUT/data`` (BasenjiSmall geometry, blacklist applied);
2. ``train`` a tiny Genomic Interpreter (``workflows/example-swin.yaml``) → ``OUT/runs/swin``
   and a tiny CNN baseline (``workflows/example-cnn-maxpool.yaml``) →
   ``OUT/runs/cnn-maxpool``, ``steps`` optimizer steps each;
3. ``evaluate`` the swin run against the CNN on the test split → ``OUT/eval`` (per-track
   TSVs, the grouped summary, the paired scatter and one window's tracks as PNGs);
4. ``predict`` ``example_data/regions.bed`` → one bigWig per track in ``OUT/predictions``;
5. ``attention`` of test window 0 with PNG heatmaps → ``OUT/attention``.

Everything runs on the GPU when there is one (training on ``cuda:0``), else on the CPU;
the default step count keeps the whole run under 5 minutes on 2 CPU cores.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch

import gitool
from gitool.config import BuildOptions
from gitool.config.attention import AttentionOptions
from gitool.config.evaluate import EvaluateOptions
from gitool.config.predict import PredictOptions
from gitool.config.quickstart import QuickstartOptions
from gitool.console import info, state
from gitool.data import build as data_build  # called as data_build.build_store: tests patch it
from gitool.errors import InputError, RunFailure, opt, render
from gitool.evaluate.coverage import EvaluationResult, evaluate
from gitool.files import Outputs
from gitool.interpret.attention import attention_from_run
from gitool.predict.inference import predict
from gitool.runs import resolve_device
from gitool.train.launch import run_training

T = TypeVar("T")

N_STEPS = 6
EXAMPLE_FILES = ("genome.fa.gz", "tracks.txt", "blacklist.bed", "regions.bed")
WORKFLOWS = {"swin": "example-swin.yaml", "cnn-maxpool": "example-cnn-maxpool.yaml"}
MARKER = ".gitool-quickstart"
"""The file that marks ``OUT`` as a quickstart folder (``force`` replaces only those)."""
OUTPUTS = ("data", "runs/swin", "runs/cnn-maxpool", "eval", "predictions", "attention", MARKER)
"""The entries of ``OUT`` the quickstart writes (and, with ``force``, replaces)."""


@dataclass
class QuickstartSummary:
    """What :func:`run_quickstart` produced.

    Attributes:
        out: the quickstart folder.
        example_data: the example data folder used (genome, tracks, regions).
        data: the store (``OUT/data``).
        runs: run folders by name: ``swin`` and ``cnn-maxpool``.
        evaluation: the swin run's test-split evaluation, with the CNN compared.
        predictions: one bigWig per track over ``regions.bed``.
        attention: the attention index (``OUT/attention/index.json``).
        attention_plots: its PNG heatmaps.
        device: where the models ran (``cpu`` or ``cuda``).
        steps: optimizer steps per model.
        seconds: wall time per step name, and ``total``.
    """

    out: Path
    example_data: Path
    data: Path
    runs: dict[str, Path]
    evaluation: EvaluationResult
    predictions: list[Path]
    attention: Path
    attention_plots: list[Path]
    device: str
    steps: int
    seconds: dict[str, float] = field(default_factory=dict)

    def files(self) -> list[tuple[str, str]]:
        """``(what, where)`` for every output, in pipeline order (paths as shown to users)."""
        ev = self.evaluation.paths
        rows = [
            ("training store", f"{_show(self.data)}/  (manifest.yaml, train/ valid/ test/)"),
        ]
        for name, run in self.runs.items():
            rows.append(
                (f"{name} run", f"{_show(run)}/  (config.yaml, metrics.jsonl, checkpoints/)")
            )
        rows.append(("per-track metrics", _show(ev["tracks"])))
        rows.append(("grouped table", _show(ev["summary"])))
        for key, path in ev.items():
            if key.startswith("compare_plot:"):
                rows.append((f"swin vs {key.partition(':')[2]} scatter", _show(path)))
        if "window_plot" in ev:
            rows.append(("test window 0 tracks", _show(ev["window_plot"])))
        if self.predictions:
            folder = self.predictions[0].parent
            rows.append((f"predictions ({len(self.predictions)} bigWigs)", f"{_show(folder)}/"))
        rows.append(("attention (npz + index)", _show(self.attention)))
        if self.attention_plots:
            folder = self.attention_plots[0].parent
            rows.append(
                (f"attention heatmaps ({len(self.attention_plots)} PNGs)", f"{_show(folder)}/")
            )
        return rows

    def next_commands(self) -> list[str]:
        """Real ``gitool`` commands that carry on from the quickstart's outputs."""
        ex = self.example_data
        data, swin, cnn = (
            _arg(p) for p in (self.data, self.runs["swin"], self.runs["cnn-maxpool"])
        )
        genome, regions = _arg(ex / "genome.fa.gz"), _arg(ex / "regions.bed")
        swin_yaml = _arg(_workflows_of(ex) / WORKFLOWS["swin"])
        gpus = "" if self.device == "cuda" else " --gpus 0"
        return [
            f"gitool info {data}",
            f"gitool train --config {swin_yaml} --data {data} "
            f"-o {_arg(self.out / 'runs' / 'swin-1000')} --max-steps 1000 --epochs 4{gpus}",
            f"gitool evaluate -m {swin} --data {data} --compare {cnn} --plot-window 12",
            f"gitool predict {regions} -m {swin} -g {genome} "
            f"-o {_arg(self.out / 'predictions-rc')}/ --rc --shifts 0,1,-1",
            f"gitool attention -m {swin} --regions {regions} -g {genome} "
            f"-o {_arg(self.out / 'attention-regions')}/ --layer 8 --rollout --plot",
        ]

    def report(self) -> str:
        """The "where everything is" block ``gitool quickstart`` prints (plain text)."""
        width = max(len(what) for what, _ in self.files())
        lines = [
            f"quickstart done in {_duration(self.seconds.get('total', 0.0))} on {self.device} "
            f"({self.steps} training steps per model); everything is in {_show(self.out)}/:",
            "",
        ]
        lines += [f"  {what:<{width}}  {where}" for what, where in self.files()]
        timing = [f"{k} {_duration(v)}" for k, v in self.seconds.items() if k != "total"]
        if timing:
            lines += ["", f"Time per step: {', '.join(timing)}."]
        lines += ["", "Next, try:"]
        lines += [f"  {command}" for command in self.next_commands()]
        return "\n".join(lines)


# --------------------------------------------------------------------------- locating inputs


def _show(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _arg(path: Path) -> str:
    return shlex.quote(_show(path))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def _workflows_of(example_data: Path) -> Path:
    return example_data.parent / "workflows"


def find_example_data(example_data: str | Path | None = None) -> tuple[Path, Path]:
    """The example data folder and the ``workflows/`` folder beside it.

    Args:
        example_data: the ``example_data/`` folder, or the repository root holding
            ``example_data/`` and ``workflows/``. Default: the repository gitool is installed
            from (``Path(gitool.__file__).parents[2]``: a source checkout or editable install).

    Raises:
        InputError: the files are not there; the message says to pass ``--example-data``.
    """
    if example_data is None:
        root = Path(gitool.__file__).resolve().parents[2]
        folder, label = root / "example_data", None
    else:
        given = Path(example_data)
        folder = given / "example_data" if (given / "example_data").is_dir() else given
        label = f"{opt('example_data')} {example_data}"
    missing = [name for name in EXAMPLE_FILES if not (folder / name).is_file()]
    missing += [
        f"../workflows/{name}"
        for name in WORKFLOWS.values()
        if not (_workflows_of(folder) / name).is_file()
    ]
    if missing:
        if label is None:
            raise InputError(
                f"the example data were not found next to the installed gitool ({folder} lacks "
                f"{missing[0]}); pass {opt('example_data')} DIR, the example_data/ folder of a "
                "gitool source checkout (with workflows/ beside it)"
            )
        raise InputError(
            f"{label}: {folder} lacks {missing[0]}; give the example_data/ folder of a gitool "
            "source checkout (with workflows/ beside it), or the checkout itself"
        )
    return folder.resolve(), _workflows_of(folder).resolve()


def is_quickstart_folder(folder: Path) -> bool:
    """Whether ``folder`` was made by ``gitool quickstart`` (it holds :data:`MARKER`)."""
    return (folder / MARKER).is_file()


def _claim_out(out: Path, force: bool, inputs: list[Path]) -> bool:
    """Check ``out`` before anything is written: new, empty, or (with ``force``) an earlier
    quickstart folder; never one holding or inside the example data. Returns whether an
    earlier quickstart's outputs are to be replaced."""
    Outputs(force, inputs=inputs).folder(
        out, is_quickstart_folder, "a folder made by gitool quickstart", field="out"
    )
    return out.is_dir() and any(out.iterdir())


ASIDE = ".quickstart-old"
"""Infix of the hidden sibling an earlier output waits in while a ``--force`` run replaces it
(``runs/.swin.quickstart-old``: beside it, so setting it aside never crosses file systems)."""


def _aside(entry: Path) -> Path:
    return entry.parent / f".{entry.name}{ASIDE}"


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    elif entry.exists() or entry.is_symlink():
        entry.unlink()


def _exists(entry: Path) -> bool:
    return entry.exists() or entry.is_symlink()


def _put_back(out: Path, *, undo: bool) -> None:
    """Put each earlier output set aside (:func:`_aside`) back in place of the one there now;
    with ``undo`` also remove the outputs that had no earlier one (all this run wrote). With
    SIGINT/SIGTERM held until done: a second Ctrl-C must not stop it half-way."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        for name in OUTPUTS:
            entry = out / name
            if _exists(_aside(entry)):
                _remove(entry)
                _aside(entry).rename(entry)
            elif undo:
                _remove(entry)
        if undo:
            with contextlib.suppress(OSError):  # not empty (the user's runs), or not there
                (out / "runs").rmdir()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


@contextmanager
def _locked_folder(out: Path) -> Iterator[None]:
    """Hold ``out`` for this run: a second quickstart into it (on any host sharing it) is
    refused with one line instead of replacing this run's outputs."""
    handle = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"another gitool quickstart is writing to {out}; wait for it to finish or "
                "choose another folder",
                field="out",
            ) from None
        except OSError:  # a file system without locks: unguarded, as before
            pass
        yield
    finally:
        os.close(handle)


@contextmanager
def _outputs_replaced(out: Path, replace: bool) -> Iterator[None]:
    """Run the pipeline's block into ``out``, all or nothing: when ``replace``, each earlier
    output (:data:`OUTPUTS` only: the user's runs of the suggested next commands stay) waits
    in a hidden sibling (:func:`_aside`) and is deleted only once the block succeeds; if the
    block fails (an error, Ctrl-C, SIGTERM), what it wrote is removed and the earlier ones
    are put back, and a folder it created is removed. Earlier outputs left aside by a run
    that was killed are put back first. The new outputs are written in place, so the runs
    record the store path they keep."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    with _locked_folder(out):
        _put_back(out, undo=False)  # a killed run's earlier outputs return
        try:
            if replace:
                for name in OUTPUTS:
                    if _exists(out / name):
                        (out / name).rename(_aside(out / name))
            (out / MARKER).write_text(f"made by gitool {gitool.__version__} quickstart\n")
            yield
        except BaseException:
            _put_back(out, undo=True)
            if created:
                with contextlib.suppress(OSError):  # not empty: something else was put there
                    out.rmdir()
            raise
        for name in OUTPUTS:
            _remove(_aside(out / name))


def _training_gpus(device: str | None) -> tuple[int, str]:
    """``(--gpus for training, device for inference)`` from ``--device``."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        if dev.index not in (None, 0):
            raise InputError(
                f"{device}: the quickstart trains on the first visible GPU; choose the GPU "
                f"with CUDA_VISIBLE_DEVICES={dev.index} and {opt('device')} cuda",
                field="device",
            )
        return 1, "cuda"
    if dev.type != "cpu":
        raise InputError(f"{device}: use cpu or cuda", field="device")
    return 0, "cpu"


# --------------------------------------------------------------------------- the pipeline


@contextmanager
def _step(
    number: int, name: str, key: str, seconds: dict[str, float], command: str
) -> Iterator[None]:
    """Announce a step; time it (``seconds[key]``); make any failure say which step it was.
    Its status lines and errors name the options of ``command``, the gitool command whose
    work it does (``state.command``)."""
    info(f"[bold]quickstart {number}/{N_STEPS}[/] {name}")
    began = time.perf_counter()
    where = f"quickstart step {number}/{N_STEPS} ({name}) failed"
    state.command = command
    try:
        yield
    except InputError as err:  # its options named now, as the step's command names them
        raise InputError(f"{where}: {render(err.template, state.option_names)}") from err
    except RunFailure as err:
        raise RunFailure(f"{where}: {err}") from err
    except Exception as err:  # noqa: BLE001 - re-raised with the step named
        raise RuntimeError(f"{where}: {type(err).__name__}: {err}") from err
    finally:
        state.command = None
    seconds[key] = time.perf_counter() - began


def _preserve_threads(fn: Callable[[], T]) -> T:
    """Training lowers torch's thread count for its DataLoader workers; later steps of the
    quickstart should run with the caller's setting."""
    threads = torch.get_num_threads()
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


def _build(example: Path, data: Path) -> None:
    """Step 1: the training store from the example genome, tracks and blacklist."""
    built = data_build.build_store(
        BuildOptions(
            genome=str(example / "genome.fa.gz"),
            tracks=str(example / "tracks.txt"),
            blacklist=str(example / "blacklist.bed"),
            out=str(data),
        )
    )
    counts = ", ".join(f"{s} {n:,}" for s, n in built.counts.items())
    info(f"[green]wrote[/] {data}: {counts} windows × {built.n_tracks} tracks")


def _train(config: Path, data: Path, run: Path, gpus: int, steps: int) -> None:
    """Steps 2 and 3: train one model from its workflow config for ``steps`` steps."""
    flags = dict(
        data=[str(data)], out=str(run), gpus=gpus, max_steps=steps, epochs=max(1, steps),
        eval_every=steps, checkpoint_every=steps, log_every=min(10, steps),
    )  # fmt: skip
    trained = _preserve_threads(lambda: run_training(str(config), flags))
    if trained is not None:
        info(
            f"[green]trained[/] {run}: {trained.step} steps, valid mean Pearson {trained.best:.3f}"
            if trained.best is not None
            else f"[green]trained[/] {run}: {trained.step} steps"
        )


def _predict(run: Path, example: Path, folder: Path, device: str):
    """Step 5: predict ``regions.bed`` into one bigWig per track in ``folder``."""
    predicted = predict(
        PredictOptions(
            regions=str(example / "regions.bed"), out=f"{folder}/", model=str(run),
            genome=str(example / "genome.fa.gz"), device=device,
        )
    )  # fmt: skip
    info(
        f"[green]predicted[/] {predicted.bp:,} bp in {predicted.n_regions} regions "
        f"({predicted.n_windows} windows) → {len(predicted.paths)} bigWigs"
    )
    return predicted


def run_quickstart(options: QuickstartOptions) -> QuickstartSummary:
    """Build, train, evaluate, predict and export attention on the example data.

    Options (:class:`~gitool.config.quickstart.QuickstartOptions`):
        out: the quickstart folder; must be new or empty, or with ``force`` an earlier
            quickstart folder (whose outputs, :data:`OUTPUTS`, are replaced once the new
            ones are made, and put back if the run fails: :func:`_outputs_replaced`;
            nothing else in it is touched).
        steps: optimizer steps for each of the two models.
        example_data: the ``example_data/`` folder (or the checkout holding it); default:
            the one beside the installed package (see :func:`find_example_data`).
        device: ``cpu`` or ``cuda``; default CUDA when available. Training uses one GPU.

    Returns:
        The produced paths and the evaluation result.

    Raises:
        InputError: bad options, an unusable ``out``, missing example data (all before
            anything is written), or a failing step (its message names the step).
    """
    began = time.perf_counter()
    example, workflows = find_example_data(options.example_data)
    gpus, dev = _training_gpus(options.device)
    out, steps = Path(options.out), options.steps
    replace = _claim_out(out, options.force, [example, workflows])
    with _outputs_replaced(out, replace):
        return _pipeline(out, steps, example, workflows, gpus, dev, began)


def _pipeline(
    out: Path, steps: int, example: Path, workflows: Path, gpus: int, dev: str, began: float
) -> QuickstartSummary:
    """The six steps of :func:`run_quickstart`, writing into ``out``."""
    seconds: dict[str, float] = {}
    data = out / "data"
    runs = {name: out / "runs" / name for name in WORKFLOWS}

    with _step(1, "build the training store", "build", seconds, "build-dataset"):
        _build(example, data)
    for number, name in enumerate(WORKFLOWS, start=2):
        label = "Genomic Interpreter (swin)" if name == "swin" else "CNN baseline (cnn-maxpool)"
        doing = f"train a small {label}, {steps} steps"
        with _step(number, doing, f"train {name}", seconds, "train"):
            _train(workflows / WORKFLOWS[name], data, runs[name], gpus, steps)
    with _step(
        4, "evaluate swin against the CNN on the test split", "evaluate", seconds, "evaluate"
    ):
        evaluation = evaluate(
            EvaluateOptions(
                model=str(runs["swin"]), data=str(data), split="test",
                compare=(str(runs["cnn-maxpool"]),), plot_window=0, out=str(out / "eval"),
                device=dev,
            )
        )  # fmt: skip
    with _step(5, "predict example_data/regions.bed to bigWig", "predict", seconds, "predict"):
        predicted = _predict(runs["swin"], example, out / "predictions", dev)
    doing = "export attention of test window 0 with heatmaps"
    with _step(6, doing, "attention", seconds, "attention"):
        attention = attention_from_run(
            AttentionOptions(
                model=str(runs["swin"]), out=str(out / "attention"), data=str(data),
                split="test", index="0", plot=True, device=dev,
            )
        )  # fmt: skip

    seconds["total"] = time.perf_counter() - began
    return QuickstartSummary(
        out=out,
        example_data=example,
        data=data,
        runs=runs,
        evaluation=evaluation,
        predictions=list(predicted.paths),
        attention=attention.index,
        attention_plots=list(attention.plots),
        device=dev,
        steps=steps,
        seconds=seconds,
    )
