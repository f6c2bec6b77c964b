"""Runs, checkpoints and devices: the one layer that train, evaluate, predict and interpret
share to find a run's checkpoint, rebuild its model and choose where it runs.

Checkpoints are state dicts + config, never pickled modules; written atomically.

A checkpoint is a dict::

    format, version        "gitool-checkpoint", 1
    model_name, preset     registry model name (e.g. "swin") and the name the user gave
    model_config           dataclasses.asdict(model.config)
    model                  model state dict (unwrapped from DDP / torch.compile)
    optimizer, scheduler, scaler   their state dicts (scaler None without fp16)
    step, epoch, batch     optimizer steps done; epoch; batches done in that epoch
    rng                    {"torch": ByteTensor, "cuda": [ByteTensor, ...]}
    train_config           the resolved training options (dict)
    data                   [{"path", "head", "manifest"}] per training dataset
    best, bad_evals        best valid mean Pearson so far; evaluations without improvement

Loaded with ``torch.load(weights_only=True)``: only tensors and plain containers.
"""

from __future__ import annotations

import contextlib
import pickle
import threading
import zipfile
from pathlib import Path
from typing import Any

import torch
from rich.markup import escape

from gitool.console import info
from gitool.errors import InputError, disk_full, full_disk_error, opt
from gitool.files import staged_file
from gitool.models.registry import build_from_config

FORMAT, VERSION = "gitool-checkpoint", 1
WHICH = ("best", "last")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary sibling and an atomic rename."""
    with staged_file(path) as tmp:
        try:
            torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
        except RuntimeError as err:  # PyTorch's writer says "unexpected pos" on a full disk
            if disk_full(tmp):
                raise full_disk_error(path) from err
            raise


def host_copy(value: Any) -> Any:
    """``value`` with every tensor copied to the host (detached, its own storage), so that
    training can go on changing the originals while the copy is written."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: host_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(host_copy(v) for v in value)
    return value


class CheckpointWriter:
    """Writes checkpoints in a background thread, one at a time.

    :meth:`save` copies the state to the host (the only part training waits for: a
    device-to-host copy, no serialisation or disk), then a thread writes it with
    :func:`save_checkpoint` (atomic rename). A new save first waits for the previous one;
    :meth:`wait` waits for the one in flight and raises its error, if any.
    """

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def save(self, path: str | Path, state: dict[str, Any]) -> None:
        self.wait()
        snapshot = host_copy(state)

        def write() -> None:
            try:
                save_checkpoint(path, snapshot)
            except BaseException as err:  # noqa: BLE001 - raised again by wait()
                self._error = err

        self._thread = threading.Thread(target=write, name="gitool-checkpoint", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err


def check_which(which: str) -> str:
    """The option ``which``: ``best`` or ``last``."""
    if which not in WHICH:
        raise InputError(f"{which!r}: choose best or last", field="which")
    return which


def _about(option: str, message: str) -> InputError:
    """An error about the run given as ``option``: a field name (``model``), or a label
    put in front as it is (``RUN``, or a flag from callers that predate field names)."""
    if option.isidentifier() and option.islower():
        return InputError(message, field=option)
    return InputError(f"{option} {message}")


def checkpoint_path(run_or_checkpoint: str | Path, which: str = "best") -> Path:
    """A ``.pt`` file as given, or ``RUN/checkpoints/{best,last}.pt`` (best falls back to last)."""
    check_which(which)
    path = Path(run_or_checkpoint)
    if path.is_file():
        return path
    if not path.exists():
        raise InputError(f"{path}: no such run folder or checkpoint")
    folder = path / "checkpoints"
    for name in [which] if which == "last" else [which, "last"]:
        if (folder / f"{name}.pt").is_file():
            return folder / f"{name}.pt"
    raise InputError(
        f"{path} has no checkpoints/{which}.pt; is it a run folder made by `gitool train`?"
    )


def _checkpoint_of(run: str | Path, which: str, option: str) -> Path:
    """:func:`checkpoint_path`, its errors naming ``option`` (the field the run came from)."""
    try:
        return checkpoint_path(run, which)
    except InputError as err:
        if err.field == "which":
            raise
        raise _about(option, err.template) from None


def _torch_archive(path: Path) -> bool:
    """Whether the zip archive ``path`` holds torch.save's ``data.pkl`` (True when its
    directory cannot be read: a truncated checkpoint is torch.load's to report)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, ValueError, zipfile.BadZipFile):
        return True
    return any(name == "data.pkl" or name.endswith("/data.pkl") for name in names)


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """Read a checkpoint, with one clear error for anything unreadable or foreign.

    ``mmap=True`` maps the tensors instead of reading them (for a look at the metadata).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as err:
        raise InputError(f"checkpoint {path}: {err.strerror}") from None
    # torch.save writes a zip archive; torch's legacy format starts with a pickle opcode
    if magic[:4] != b"PK\x03\x04" and magic[:1] != b"\x80":
        raise InputError(
            f"{path} is not a checkpoint (not a file written by torch.save); give a run "
            "folder made by `gitool train` or its checkpoints/best.pt"
        )
    if magic == b"PK\x03\x04" and not _torch_archive(path):
        raise InputError(
            f"{path} is not a checkpoint (a zip archive, but not one torch.save wrote); give a "
            "run folder made by `gitool train` or its checkpoints/best.pt"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except (
        OSError,
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        pickle.UnpicklingError,
        ValueError,
    ) as err:
        raise InputError(
            f"checkpoint {path} is corrupt or truncated ({type(err).__name__}); "
            "use another one (e.g. checkpoints/best.pt) or retrain"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{path} is not a gitool checkpoint")
    if state.get("version") != VERSION:
        raise InputError(f"{path}: checkpoint version {state.get('version')} is not {VERSION}")
    return state


def checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """A checkpoint for a look at what it records (its options, data, steps): the tensors
    stay on disk, memory-mapped (torch's legacy non-zip format, which cannot be mapped, is
    read whole)."""
    try:
        return load_checkpoint(path, mmap=True)
    except InputError:
        return load_checkpoint(path)


def load_model(
    run_or_checkpoint: str | Path, which: str = "best", device: str | torch.device = "cpu"
):
    """Rebuild the model of a run (or checkpoint file) in eval mode.

    Returns:
        ``(model, checkpoint)``; the checkpoint dict carries the data manifests and heads.
    """
    state = load_checkpoint(checkpoint_path(run_or_checkpoint, which), map_location=device)
    model = build_from_config(state["model_name"], state["model_config"])
    model.load_state_dict(state["model"], strict=True)
    return model.to(device).eval(), state


def training_store(
    run_or_checkpoint: str | Path, which: str = "best", option: str = "model"
) -> Path:
    """The store a run was trained on: the default ``--data`` of ``evaluate`` and ``interactions``.

    Reads only the checkpoint's ``data`` entry (memory-mapped, the weights stay on disk).

    Raises:
        InputError: no such run (naming ``option``, the field the run came from), or the
            run records no store or several, or its store has moved.
    """
    ckpt = _checkpoint_of(run_or_checkpoint, which, option)
    entries = checkpoint_metadata(ckpt).get("data") or []
    # One store per head entry: a multi-head run lists a store once per head it trained.
    stores = list(
        dict.fromkeys(Path(d["path"]) for d in entries if isinstance(d, dict) and d.get("path"))
    )
    if not stores:
        raise InputError(f"{ckpt} records no training store; give one with {opt('data')} STORE")
    if len(stores) > 1:
        raise InputError(
            f"{ckpt} was trained on {len(stores)} stores ({', '.join(map(str, stores))}); "
            f"choose one with {opt('data')} STORE"
        )
    if not stores[0].is_dir():
        raise InputError(
            f"{ckpt} was trained on {stores[0]}, which is no longer there; "
            f"give the store with {opt('data')} STORE"
        )
    return stores[0]


def default_store(run_or_checkpoint: str | Path, which: str = "best") -> Path:
    """:func:`training_store`, chosen as the default ``--data``: a status line says so."""
    store = training_store(run_or_checkpoint, which)
    info(
        f"using store {escape(shown_path(store))} (the run's training store; give "
        f"{opt('data')} STORE to choose another)"
    )
    return store


def newest_run(root: str | Path = "runs") -> Path | None:
    """The run folder under ``root`` trained most recently: newest by the modification time
    of its ``checkpoints/best.pt`` or ``last.pt`` (whichever is newer); ``None`` when ``root``
    holds no folder with a checkpoint."""
    root = Path(root)
    if not root.is_dir():
        return None
    found: list[tuple[float, str, Path]] = []
    for folder in root.iterdir():
        times = [
            (folder / "checkpoints" / f"{name}.pt").stat().st_mtime
            for name in WHICH
            if (folder / "checkpoints" / f"{name}.pt").is_file()
        ]
        if times:
            found.append((max(times), folder.name, folder))
    return max(found)[2] if found else None


def fresh_run_folder(root: str | Path = "runs", name: str = "run") -> Path:
    """``ROOT/NAME``, or ``ROOT/NAME-2``, ``-3``, ... : the first that does not exist yet (or
    is an empty folder), so a default run folder never holds an earlier run's files."""
    root = Path(root)
    number = 1
    while True:
        folder = root / (name if number == 1 else f"{name}-{number}")
        if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
            return folder
        number += 1


def default_run(root: str | Path = "runs", option: str = "model") -> Path:
    """The run a command uses when the option ``option`` (a field name, e.g. ``model``) is
    not given: :func:`newest_run` under ``root``, announced with one status line (which
    shows ``option`` as ``-m``, the flag of every command that takes a run).

    Raises:
        InputError: no run under ``root``, naming ``option``.
    """
    ref = opt(option) if option.isidentifier() else option
    run = newest_run(root)
    if run is None:
        raise InputError(
            f"{ref}: no run given and no trained run under {shown_path(root)}/; give "
            f"{ref} RUN (a folder made by `gitool train`) or train one with `gitool train`"
        )
    flag = "-m" if option.isidentifier() else option
    info(
        f"using run {shown_path(run)} (newest under {shown_path(root)}/; give {flag} RUN to choose)"
    )
    return run


def shown_path(path: str | Path) -> str:
    """``path`` as a status line shows it: relative to the current folder when inside it."""
    path = Path(path)
    if path.is_absolute():
        with contextlib.suppress(ValueError, OSError):
            return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)


def run_label(run: str | Path) -> str:
    """A short name for a run folder or checkpoint file (used in tables and plots)."""
    path = Path(run)
    if path.suffix == ".pt" or path.is_file():
        if path.parent.name == "checkpoints":
            base = path.parent.parent.resolve().name
            return base if path.stem == "best" else f"{base}:{path.stem}"
        return path.stem
    return path.resolve().name or str(path)


def load_run(run: str | Path, which: str, option: str) -> tuple[torch.nn.Module, dict, Path]:
    """The model (CPU, eval mode), its checkpoint dict and the checkpoint file; every failure
    is an ``InputError`` naming ``option`` (the field the run came from, e.g. ``model``)."""
    ckpt = _checkpoint_of(run, which, option)
    try:
        model, state = load_model(ckpt, which=which, device="cpu")
    except OSError as err:
        # torch raises OSError (EINVAL) for some truncations, which load_checkpoint lets by.
        raise InputError(
            f"checkpoint {ckpt} is corrupt, truncated or unreadable ({type(err).__name__}: "
            f"{err.strerror or err}); use another one (e.g. checkpoints/last.pt) or retrain"
        ) from None
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise _about(
            option,
            f"{ckpt}: checkpoint does not hold a model gitool can rebuild "
            f"({type(err).__name__}: {err}); use another checkpoint or retrain",
        ) from None
    return model, state, ckpt


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The option ``device`` → a torch device (default: cuda when available, else cpu),
    checked."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(
            f"{device!r} is not a device; use cpu, cuda or cuda:N", field="device"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"{device}: no CUDA GPU is available; use {opt('device')} cpu", field="device"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(
            f"{device}: only {torch.cuda.device_count()} CUDA device(s) are visible",
            field="device",
        )
    return dev


@contextlib.contextmanager
def evaluating(model: torch.nn.Module, device: torch.device):
    """Run ``model`` in eval mode on ``device`` for the block, then give it back as it was:
    its training flag, and the device it was on (tangermeme's ``_preserve_model_state``)."""
    was_training = model.training
    parameter = next(model.parameters(), None)
    home = parameter.device if parameter is not None else None
    try:
        model.eval()
        if home is not None and home != device:
            model.to(device)
        yield model
    finally:
        model.train(was_training)
        if home is not None and home != device:
            model.to(home)


def pinned_for(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` (on the host) ready to be copied to ``device`` without waiting for the GPU:
    in pinned memory for CUDA (a copy from pageable memory waits until the GPU has finished
    everything queued before it; pinning needs CUDA), as it is otherwise."""
    return tensor.pin_memory() if device.type == "cuda" else tensor


def to_device(values, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``values`` (a list or numpy array) as a tensor on ``device``, copied through
    :func:`pinned_for` without waiting for the GPU."""
    tensor = pinned_for(torch.as_tensor(values, dtype=dtype), device)
    return tensor.to(device, non_blocking=True)


def autocast_for(device: torch.device, bf16: bool = True):
    """bf16 autocast on CUDA (unless ``bf16`` is False), nothing elsewhere."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def choose_head(heads: dict[str, int], head: str | None, label: str) -> str:
    """``head`` if the model has it; else the model's only head.

    Raises:
        InputError: unknown head, or several heads and none chosen (listing them).
    """
    listing = ", ".join(f"{h} ({n} tracks)" for h, n in heads.items())
    if head is not None:
        if head not in heads:
            raise InputError(
                f"{head!r} is not a head of {label}; this model has {listing}", field="head"
            )
        return head
    if len(heads) == 1:
        return next(iter(heads))
    raise InputError(f"{label} has several heads ({listing}); choose one with {opt('head')}")
