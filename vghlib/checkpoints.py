"""Where the checkpoints of a sweep come from: a Hub model's branches, local folders, or Part IV.

Reference: Asadulaev et al., arXiv 2605.21654, Section 6 (20 pretraining checkpoints of
``allenai/OLMo-2-0425-1B``, steps 50k to 1M every 50k).

Every source gives a list of :class:`CheckpointRef` (a name, a pretraining step, and where the
weights are) and :func:`load` turns one into ``(model, tokenizer)``:

* **a Hub model id and a step range**, e.g. ``resolve("allenai/OLMo-2-0425-1B",
  "50000:1000000:50000")``. OLMo-2 publishes its intermediate checkpoints as git branches named
  like ``stage1-step140000-tokens294B``. The branches are *listed*
  (``huggingface_hub.list_repo_refs``) and selected by the step they name; a branch name is never
  built by formula, since its token count is a rounding the library cannot know. Weights load
  with ``revision=<branch>``. Offline (``HF_HUB_OFFLINE=1``, or no network), the branches are
  read from the local Hugging Face cache instead, so checkpoints downloaded earlier with
  ``huggingface-cli download`` work without the Hub;
* **a local folder** of checkpoints saved with ``save_pretrained``: sub-folders whose name holds
  ``step<N>`` (``step000120/``, ``stage1-step140000-tokens294B/``), or a Part IV trajectory with its
  ``manifest.json``;
* **``"laptop"``**: Part IV's pretraining trajectory, built with the pinned defaults of
  ``python -m vghlib pretrain`` in the book's cache folder when it is not there yet.

A step that does not exist gets an error listing the nearest steps that do; offline without a
local copy, the error gives the ``huggingface-cli download`` commands to run, or the folder to
point at instead. Loading is safetensors only, never with remote code.

What a checkpoint's weights are is checked, not assumed. :func:`weights_id` names them:
``sha256:<hex>`` of the tensors of a folder's ``*.safetensors`` (names in order, then the raw
bytes; the same digest ``python -m vghlib pretrain`` records as ``weights_sha256``), or
``git:<commit>`` of a Hub revision. :func:`load_model` reads a folder only after every
safetensors header parses, and only if its tensors hash to the ``weights_sha256`` that the
folder's ``checkpoint.json`` or the trajectory's manifest recorded, when either did.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import constants, errors, is_offline_mode, list_repo_refs
from safetensors import SafetensorError, safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from vghlib import pretrain
from vghlib.env import cache_dir as book_cache
from vghlib.pretrain import BUILD_HINT, MANIFEST, Checkpoint, TrajectoryError

__all__ = [
    "CheckpointRef",
    "CheckpointError",
    "parse_steps",
    "parse_branch",
    "hub_branches",
    "select_steps",
    "resolve",
    "list_checkpoints",
    "load",
    "load_model",
    "weights_sha256",
    "weights_id",
    "verify_weights",
    "LAPTOP",
]

LAPTOP = "laptop"
# stage1-step140000-tokens294B, stage2-ingredient3-step3000-tokens7B, stage1-step0-tokens0B
_BRANCH = re.compile(
    r"^(?P<stage>stage\d+)(?:-(?P<part>[a-z]+\d+))?-step(?P<step>\d+)"
    r"-tokens(?P<tokens>\d+)B$"
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be found or loaded; the message says what to do."""


@dataclass(frozen=True)
class CheckpointRef:
    """One checkpoint: ``name`` (its key in a results file: the branch or folder name), ``step``
    (pretraining step), ``location`` (a Hub repo id or a folder) and ``revision`` (the Hub
    branch; None for a folder)."""

    name: str
    step: int
    location: str
    revision: str | None = None

    @property
    def is_hub(self) -> bool:
        return self.revision is not None


def parse_steps(spec) -> list[int] | None:
    """The steps of ``--steps``: ``"START:STOP:STEP"`` (STOP included), ``"a,b,c"``, or
    ``"all"``/None (every checkpoint of the source: returns None).

    >>> parse_steps("50000:1000000:50000")[:3], len(parse_steps("50000:1000000:50000"))
    ([50000, 100000, 150000], 20)
    """
    if spec is None or (isinstance(spec, str) and spec.strip() in ("", "all")):
        return None
    if not isinstance(spec, str):
        return sorted({int(s) for s in spec})
    s = spec.strip()
    try:
        if ":" in s:
            parts = [int(x) for x in s.split(":")]
            if len(parts) != 3 or parts[2] <= 0 or parts[1] < parts[0]:
                raise ValueError
            start, stop, step = parts
            return list(range(start, stop + 1, step))
        out = sorted({int(x) for x in s.split(",") if x.strip()})
    except ValueError:
        raise CheckpointError(
            f"--steps {spec!r}: expected START:STOP:STEP with STOP included "
            "(e.g. 50000:1000000:50000), a comma-separated list of steps, or "
            "'all'"
        ) from None
    if not out or min(out) < 0:
        raise CheckpointError(f"--steps {spec!r}: steps must be non-negative integers")
    return out


def parse_branch(name: str) -> dict | None:
    """``{"stage", "part", "step", "tokens_b"}`` of an OLMo-style branch name, or None.

    >>> parse_branch("stage1-step140000-tokens294B")["step"]
    140000
    """
    m = _BRANCH.match(name)
    if m is None:
        return None
    return {
        "stage": m["stage"],
        "part": m["part"],
        "step": int(m["step"]),
        "tokens_b": int(m["tokens"]),
    }


def _download_hint(repo_id: str, branches) -> str:
    cmds = "\n".join(f"  huggingface-cli download {repo_id} --revision {b}" for b in branches[:3])
    more = f"\n  ... ({len(branches) - 3} more revisions)" if len(branches) > 3 else ""
    return (
        f"On a machine with Hub access, download them first:\n{cmds}{more}\n(then copy the "
        "Hugging Face cache, or set HF_HUB_CACHE to it), or pass a local folder of "
        "checkpoints saved with save_pretrained (--model DIR, one step<N>/ sub-folder each)."
    )


def cached_branches(repo_id: str, cache_dir=None) -> list[str]:
    """Branch names of ``repo_id`` present in the local Hugging Face cache (no network)."""
    root = Path(cache_dir or constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    refs = root / "refs"
    if not refs.is_dir():
        return []
    return sorted(str(p.relative_to(refs)) for p in refs.rglob("*") if p.is_file())


def hub_branches(repo_id: str, *, list_refs=None, cache_dir=None) -> tuple[list[str], str]:
    """The branch names of a Hub model and where they came from (``"hub"`` or ``"cache"``).

    ``list_refs``: the function that lists them (default ``huggingface_hub.list_repo_refs``;
    tests pass a fake). Offline or unreachable, falls back to the branches in the local cache.
    """
    list_refs = list_refs or list_repo_refs
    if not is_offline_mode():
        try:
            return [b.name for b in list_refs(repo_id).branches], "hub"
        except (errors.RepositoryNotFoundError, errors.GatedRepoError) as err:
            raise CheckpointError(
                f"{repo_id!r} is not a model the Hub lets this machine read "
                f"({type(err).__name__}): check the id (e.g. "
                "allenai/OLMo-2-0425-1B), or log in with `huggingface-cli "
                "login` for a gated model"
            ) from None
        except Exception:  # no network: the cache is all there is  # noqa: BLE001
            pass
    found = cached_branches(repo_id, cache_dir)
    if not found:
        why = "HF_HUB_OFFLINE is set" if is_offline_mode() else "the Hub cannot be reached"
        raise CheckpointError(
            f"{why} and the local Hugging Face cache holds no revision of {repo_id!r}, so its "
            "checkpoints can be neither listed nor loaded. "
            + _download_hint(
                repo_id,
                ["stage1-step<STEP>-tokens<TOKENS>B"]
                + ["(list the names with huggingface_hub.list_repo_refs)"],
            )
        )
    return found, "cache"


def _nearest(step: int, available: list[int]) -> list[int]:
    """The available steps just below and just above ``step`` (one of them at the ends)."""
    i = bisect.bisect_left(available, step)
    return available[max(0, i - 1) : i + 1]


def select_steps(named: dict[int, str], steps, where: str) -> list[tuple[int, str]]:
    """``[(step, name)]`` for the requested ``steps`` (None: all) out of ``named`` {step: name}.

    Every requested step must exist; otherwise the error lists, for each missing step, the
    nearest available ones.
    """
    available = sorted(named)
    if not available:
        raise CheckpointError(f"{where} holds no checkpoints")
    if steps is None:
        return [(s, named[s]) for s in available]
    missing = [s for s in steps if s not in named]
    if missing:
        near = "; ".join(
            f"to {s}, {' and '.join(map(str, _nearest(s, available)))}" for s in missing[:8]
        )
        more = f" (and {len(missing) - 8} more)" if len(missing) > 8 else ""
        raise CheckpointError(
            f"{where} has no checkpoint at step(s) {', '.join(map(str, missing[:8]))}{more}. "
            f"The nearest that exist: {near}{more}. {len(available)} checkpoints exist, steps "
            f"{available[0]}..{available[-1]}; pass steps from that list."
        )
    return [(s, named[s]) for s in steps]


def _hub_refs(repo_id, steps, stage, list_refs, cache_dir) -> list[CheckpointRef]:
    names, origin = hub_branches(repo_id, list_refs=list_refs, cache_dir=cache_dir)
    named = {}
    for n in names:
        b = parse_branch(n)
        if b is not None and "-".join(filter(None, (b["stage"], b["part"]))) == stage:
            named.setdefault(b["step"], n)
    where = (
        f"{repo_id} ({'branches in the local cache' if origin == 'cache' else 'Hub branches'}, "
        f"{stage})"
    )
    if not named:
        raise CheckpointError(
            f"{where}: no branch is named like {stage}-step<STEP>-tokens<N>B "
            f"(found {sorted(names)[:5]}...); pass --stage, or a local folder"
        )
    try:
        chosen = select_steps(named, steps, where)
    except CheckpointError as err:
        if origin == "cache":
            raise CheckpointError(
                f"{err} Offline, only the cached revisions can be used. "
                + _download_hint(
                    repo_id, [f"{stage}-step{s}-tokens<N>B" for s in steps if s not in named]
                )
            ) from None
        raise
    return [CheckpointRef(n, s, repo_id, n) for s, n in chosen]


def _folder_refs(folder: Path, steps) -> list[CheckpointRef]:
    named = {c.step: c.path.name for c in list_checkpoints(folder)}
    chosen = select_steps(named, steps, str(folder))
    return [CheckpointRef(n, s, str(folder / n)) for s, n in chosen]


def laptop_folder() -> Path:
    return book_cache() / "laptop-trajectory"


def resolve(
    model: str, steps=None, *, stage: str = "stage1", list_refs=None, cache_dir=None
) -> list[CheckpointRef]:
    """The checkpoints of ``model`` at ``steps`` (a :func:`parse_steps` spec or list; None: all).

    ``model``: ``"laptop"`` (Part IV's trajectory, built when missing), an existing local folder,
    or a Hub model id ``owner/name``. ``stage``: which branches of a Hub model count (OLMo-2:
    ``stage1`` pretraining, not the ``stage2-ingredient…`` annealing runs). ``list_refs``,
    ``cache_dir``: see :func:`hub_branches`. ``stage="stage2-ingredient3"`` selects
    OLMo-2's annealing branches of that ingredient.
    """
    if not isinstance(steps, list):
        steps = parse_steps(steps)
    if model == LAPTOP:
        folder = laptop_folder()
        if pretrain.read_manifest(folder) is None or not pretrain.read_manifest(folder).get(
            "complete"
        ):
            print(f"building Part IV's laptop trajectory in {folder} (about 2 minutes)")
            pretrain.build_trajectory(folder, progress=False)
        return _folder_refs(folder, steps)
    path = Path(model).expanduser()
    if path.is_dir() or model.startswith(("/", ".", "~")) or model.count("/") > 1:
        return _folder_refs(path, steps)  # a folder (its error says if it is missing)
    if re.fullmatch(r"[\w.-]+/[\w.-]+", model) is None:
        raise CheckpointError(
            f"--model {model!r} is neither a folder nor a Hub model id "
            "(owner/name, e.g. allenai/OLMo-2-0425-1B) nor 'laptop'"
        )
    return _hub_refs(model, steps, stage, list_refs, cache_dir)


# --------------------------------------------------------------------------------------------
# Reading checkpoints: a folder's list, and the one load path for folders and Hub branches
# --------------------------------------------------------------------------------------------


def _is_model_dir(p: Path) -> bool:
    return p.is_dir() and (p / "config.json").is_file() and any(p.glob("*.safetensors"))


def list_checkpoints(folder) -> list[Checkpoint]:
    """The checkpoints of a trajectory folder, in step order.

    Reads ``manifest.json`` when there is one (it also gives R_before). Otherwise lists every
    sub-folder that holds a saved model (``config.json`` and ``*.safetensors``) and whose name
    contains ``step<N>`` (``step000120``, or OLMo-2's ``stage1-step140000-tokens294B``).
    """
    folder = Path(folder)
    expected = (
        f"expected sub-folders such as step000000/, step000120/, ... each holding a model "
        f"and tokenizer saved with save_pretrained (config.json, model.safetensors, "
        f"tokenizer.json), or a {MANIFEST}; {BUILD_HINT.format(folder=folder)}"
    )
    if not folder.is_dir():
        raise CheckpointError(f"{folder} does not exist: {expected}")
    try:
        m = pretrain.read_manifest(folder)
    except TrajectoryError as err:
        raise CheckpointError(str(err)) from None
    if m is not None:
        if not m.get("complete"):
            raise CheckpointError(
                f"{folder} holds an unfinished build ({len(m.get('checkpoints', []))} "
                f"checkpoints so far): rerun `python -m vghlib pretrain --out {folder}`"
            )
        cps = [Checkpoint(c["step"], folder / c["dir"], c["r_before"]) for c in m["checkpoints"]]
        missing = [c.path.name for c in cps if not _is_model_dir(c.path)]
        if missing:
            raise CheckpointError(
                f"{folder}/{MANIFEST} lists checkpoints that are missing or "
                f"incomplete: {missing}; rebuild with --force"
            )
    else:
        cps = []
        for p in folder.iterdir():
            s = re.search(r"step[-_]?(\d+)", p.name)
            if s and not p.name.startswith(".") and _is_model_dir(p):
                cps.append(Checkpoint(int(s.group(1)), p))
    if not cps:
        raise CheckpointError(f"{folder} holds no checkpoints: {expected}")
    return sorted(cps, key=lambda c: c.step)


def _damaged(f: Path, err: Exception) -> CheckpointError:
    return CheckpointError(
        f"{f} cannot be read as safetensors ({str(err).splitlines()[0][:160]}): the file is "
        "truncated, damaged or not safetensors. Restore it from a copy, download it again, or "
        f"rebuild the trajectory: `python -m vghlib pretrain --out {f.parent.parent} --force`."
    )


def _safetensors_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.safetensors"))
    for f in files:  # every header must parse and cover the file before anything is loaded
        try:
            with safe_open(f, framework="pt"):
                pass
        except (SafetensorError, OSError) as err:
            raise _damaged(f, err) from None
    return files


@functools.lru_cache(maxsize=64)
def _tensor_sha256(files: tuple, stamp: tuple) -> str:
    h = hashlib.sha256()
    tensors = {}
    for f in files:
        with safe_open(f, framework="pt") as st:
            tensors.update({k: f for k in st.keys()})
    for name in sorted(tensors):
        try:
            with safe_open(tensors[name], framework="pt") as st:
                t = st.get_tensor(name)
        except (SafetensorError, OSError, RuntimeError) as err:
            raise _damaged(Path(tensors[name]), err) from None
        h.update(name.encode())
        h.update(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def weights_sha256(folder) -> str:
    """sha256 of the tensors in ``folder``'s ``*.safetensors``: names in order, then raw bytes.

    Equal to the ``weights_sha256`` that ``python -m vghlib pretrain`` records for a checkpoint
    (the hash of its model's ``state_dict``), and equal iff the weights are bit-identical.
    A damaged file raises :class:`CheckpointError`.
    """
    files = _safetensors_files(Path(folder))
    if not files:
        raise CheckpointError(f"{folder} holds no .safetensors weights")
    stamp = tuple((f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _tensor_sha256(tuple(str(f) for f in files), stamp)


def _recorded_sha256(folder: Path) -> list[tuple[str, str]]:
    """``[(where, sha256)]`` recorded for this checkpoint folder: its ``checkpoint.json`` and
    its trajectory's manifest."""
    out = []
    try:
        info = json.loads((folder / "checkpoint.json").read_text())
        if isinstance(info, dict) and info.get("weights_sha256"):
            out.append((str(folder / "checkpoint.json"), info["weights_sha256"]))
    except (OSError, json.JSONDecodeError):
        pass
    try:
        m = pretrain.read_manifest(folder.parent)
    except TrajectoryError:
        m = None
    for c in (m or {}).get("checkpoints", []):
        if c.get("dir") == folder.name and c.get("weights_sha256"):
            out.append((str(folder.parent / MANIFEST), c["weights_sha256"]))
    return out


def verify_weights(folder) -> None:
    """Check that every safetensors header of ``folder`` parses and, where a ``weights_sha256``
    was recorded, that the tensors hash to it; :class:`CheckpointError` says which and what to
    do."""
    folder = Path(folder)
    recorded = _recorded_sha256(folder)
    _safetensors_files(folder)
    if not recorded:
        return
    actual = weights_sha256(folder)
    for where, sha in recorded:
        if sha != actual:
            raise CheckpointError(
                f"the weights in {folder} do not match the weights_sha256 recorded in {where} "
                f"(recorded sha256:{sha[:16]}, found sha256:{actual[:16]}): the file was changed "
                "or damaged after it was saved, and its results would not be those of the "
                "recorded checkpoint. Restore the checkpoint from a copy, or rebuild the "
                f"trajectory: `python -m vghlib pretrain --out {folder.parent} --force`."
            )


def weights_id(source, cache_dir=None) -> str | None:
    """What names a checkpoint's weights: ``sha256:<hex>`` of a folder's tensors (the recorded
    ``weights_sha256`` when there is one; :func:`load_model` checks the files against it), or
    ``git:<commit>`` of a Hub revision once the local cache has it (None before)."""
    location, revision = _where(source)
    if revision is not None:
        ref = (
            Path(cache_dir or constants.HF_HUB_CACHE)
            / ("models--" + location.replace("/", "--"))
            / "refs"
            / revision
        )
        return f"git:{ref.read_text().strip()}" if ref.is_file() else None
    folder = Path(location)
    recorded = _recorded_sha256(folder)
    return f"sha256:{recorded[0][1]}" if recorded else f"sha256:{weights_sha256(folder)}"


def _where(source) -> tuple[str, str | None]:
    """(location, revision) of a CheckpointRef, a listed Checkpoint, or a folder path."""
    if isinstance(source, CheckpointRef):
        return source.location, source.revision
    return str(source.path if isinstance(source, Checkpoint) else source), None


def _source_kwargs(revision, cache_dir) -> dict:
    """Where ``from_pretrained`` reads: a Hub revision (through ``cache_dir``), or a folder alone
    (``local_files_only``: a folder never reaches the Hub); never with remote code."""
    return dict(
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=revision is None,
        trust_remote_code=False,
    )


def load_model(source, dtype=torch.float64, *, device_map=None, cache_dir=None):
    """The causal LM of a checkpoint, in eval mode, weights in ``dtype`` (no tokenizer needed).

    ``source``: a :class:`CheckpointRef` (a folder or a Hub branch), a :class:`Checkpoint` of
    :func:`list_checkpoints`, or a folder written by ``save_pretrained``. Safetensors only, never
    remote code; a folder never reaches the Hub. A folder holding only pickled weights
    (``pytorch_model.bin``) is refused: convert it with ``model.save_pretrained(dir,
    safe_serialization=True)`` in a trusted environment first. ``device_map="auto"`` spreads a
    model larger than one GPU over all visible GPUs (and the CPU) through accelerate.
    """
    location, revision = _where(source)
    if revision is None:
        path = Path(location)
        if not path.is_dir():
            raise CheckpointError(
                f"{path} is not a folder; pass the folder written by save_pretrained"
            )
        if not any(path.glob("*.safetensors")):
            raise CheckpointError(
                f"{path} holds no .safetensors weights; this loader refuses "
                "pickled checkpoints (re-save with safe_serialization=True)"
            )
        verify_weights(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            location,
            use_safetensors=True,
            dtype=dtype,
            device_map=device_map,
            **_source_kwargs(revision, cache_dir),
        )
    except OSError as err:
        raise _hub_error(location, revision, err) from None
    model.eval()
    return model


def load(source, dtype=torch.float64, *, device_map=None, cache_dir=None):
    """``(model, tokenizer)`` of one checkpoint: :func:`load_model` and its tokenizer.

    ``source`` as for :func:`load_model`. A folder must hold its tokenizer too
    (``tokenizer.save_pretrained`` beside the model).
    """
    location, revision = _where(source)
    if revision is None:
        path = Path(location)
        if not _is_model_dir(path):
            raise CheckpointError(
                f"{path} holds no saved model: expected config.json and model.safetensors written "
                "by save_pretrained (a checkpoint of list_checkpoints(folder)); "
                f"{BUILD_HINT.format(folder=path.parent)}"
            )
        if not ((path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()):
            raise CheckpointError(
                f"{path} holds a model but no tokenizer (tokenizer.json): save "
                "the tokenizer next to the model with "
                "tokenizer.save_pretrained(path)"
            )
    model = load_model(source, dtype, device_map=device_map, cache_dir=cache_dir)
    try:
        tok = AutoTokenizer.from_pretrained(location, **_source_kwargs(revision, cache_dir))
    except OSError as err:
        raise _hub_error(location, revision, err) from None
    return model, tok


def _hub_error(location, revision, err: OSError) -> Exception:
    if revision is None:
        return CheckpointError(f"cannot load {location}: {str(err).splitlines()[0][:200]}")
    if "safetensors" in str(err).lower() and "no file named" in str(err).lower():
        return CheckpointError(
            f"{location}@{revision} has no safetensors weights; "
            "this book loads no pickled checkpoints"
        )
    why = "offline" if is_offline_mode() else "the download failed"
    return CheckpointError(
        f"cannot load {location} at revision {revision} ({why}: "
        f"{str(err).splitlines()[0][:200]}). " + _download_hint(location, [revision])
    )


def describe(refs) -> str:
    """One line per checkpoint: the table a sweep prints before it starts."""
    return "\n".join(f"{r.step:>9}  {r.name}" for r in refs)
