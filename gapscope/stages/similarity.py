"""The similarity stage (rules/similarity.smk): activation stores -> prepared views -> pairs.

- ``similarity_view``: the activation stores of one language -> its *prepared views*,
  one file ``results/similarity/{model}/views/{language}.npz`` with a view per modality:
  per tap, everything a pair needs from that view (:func:`gapscope.similarity.prepare_view`:
  the SVCCA reduction, the two held-out folds, the Gram matrix), computed once per run
  whatever the number of pairs.
- ``similarity_pair``: the prepared views of two languages -> the tidy rows of every
  comparison between them (each modality across the two; a language with itself: its text
  against its speech), every metric at every matching tap with its calibration
  (:func:`gapscope.similarity.compare_views`).
- ``similarity_table``: every pair in one table.

Views are aligned by sentence id. A prepared view holds its store's rows in ascending id
order; a pair whose two views hold the same ids (the usual case, and always with
``corpus.sentence_ids``) uses both as they are. Otherwise the pair is computed on the ids
both hold, and a view that holds more is prepared again on those rows from its store, so the
numbers never depend on which ids other languages have.

The library modules stay pure: this module reads stores and prepared views, checks that two
views come from the same run, pairs the taps (:func:`gapscope.models.cross_modal_pairs`) and
writes the rows.
"""

from __future__ import annotations

import io
import json
import logging
import math
import mmap
import os
import re
import struct
import zipfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gapscope import similarity as sim
from gapscope.errors import ConfigError, StoreError
from gapscope.identity import REQUIRED_FIELDS, STORED_FIELDS

__all__ = [
    "PREPARED_FORMAT",
    "TIDY_COLUMNS",
    "Options",
    "PreparedStore",
    "PreparedViewError",
    "align_ids",
    "compare_files",
    "compare_prepared",
    "compare_stores",
    "compute_device",
    "load_prepared",
    "prepare_store",
    "read_tables",
    "save_prepared",
    "view_options",
    "write_rows",
]

log = logging.getLogger(__name__)

PREPARED_FORMAT = 3  # 2: held-out folds of wide views fixed where the Gram route falls back
# 3: one file per language, a view per modality under its name
# which two views, then pairwise's own columns from ``metric`` on
TIDY_COLUMNS = [
    "model",
    "comparison",
    "lang_a",
    "modality_a",
    "tap_a",
    "lang_b",
    "modality_b",
    "tap_b",
    *sim.COLUMNS[sim.COLUMNS.index("metric") :],
]
_STRING_COLUMNS = TIDY_COLUMNS[: TIDY_COLUMNS.index("metric") + 1]
_INT_COLUMNS = ("n", "k_a", "k_b")


class PreparedViewError(ValueError):
    """A prepared view is missing, foreign, stale or from another run; the message names it."""


@dataclass(frozen=True)
class Options:
    """The ``similarity`` config section, as the stage uses it (every key required: the
    defaults are the schema's, filled in when the config is validated)."""

    metrics: tuple[str, ...]
    variance: float
    k: int | None
    null_permutations: int
    heldout: bool
    bootstrap: int
    seed: int
    mknn_k: int
    standardize: bool

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Options:
        """From the validated ``similarity`` section; a missing key is a ConfigError naming it."""

        def get(*keys: str) -> Any:
            value: Any = section
            for i, key in enumerate(keys):
                if not isinstance(value, Mapping) or key not in value:
                    path = ".".join(("similarity", *keys[: i + 1]))
                    raise ConfigError(f"{path} is missing from the options")
                value = value[key]
            return value

        return cls(
            metrics=tuple(get("metrics")),
            variance=float(get("svcca", "variance")),
            k=get("svcca", "k"),
            null_permutations=int(get("null_permutations")),
            heldout=bool(get("heldout")),
            bootstrap=int(get("bootstrap")),
            seed=int(get("seed")),
            mknn_k=int(get("mknn", "k")),
            standardize=bool(get("standardize")),
        )

    @property
    def cca(self) -> bool:
        return any(m in sim.CCA_METRICS for m in self.metrics)

    def view_key(self) -> dict[str, Any]:
        """Every option a prepared view depends on (its rule's params; stored in the file)."""
        key: dict[str, Any] = {
            "cca": self.cca,
            "gram": any(m in sim.GRAM_METRICS for m in self.metrics),
            "unit": any(m in sim.POINTWISE_METRICS for m in self.metrics),
            "standardize": self.standardize,
        }
        if self.cca:
            key.update(variance=self.variance, k=self.k, heldout=self.heldout)
            if self.heldout:
                key["seed"] = self.seed  # the held-out halves
        if "mknn" in self.metrics:
            key["mknn_k"] = self.mknn_k
        return key

    def prepare_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`gapscope.similarity.prepare_view`."""
        return {
            "metrics": self.metrics,
            "variance": self.variance,
            "k": self.k,
            "heldout": self.heldout,
            "seed": self.seed,
            "mknn_k": self.mknn_k,
            "standardize": self.standardize,
        }


def view_options(section: Mapping[str, Any]) -> dict[str, Any]:
    """The options a prepared view depends on, from the ``similarity`` config section, and
    the prepared-view format (the rule's params: a new format reruns the views)."""
    return {**Options.from_config(section).view_key(), "format": PREPARED_FORMAT}


def compute_device(section: Mapping[str, Any]) -> Any:
    """The compute device of ``similarity.device`` (``auto``: a CUDA GPU when the job sees one,
    else the CPU); a device this machine lacks is a ConfigError naming the key."""
    try:
        return sim.resolve_device(section["device"])
    except (ValueError, RuntimeError) as err:
        raise ConfigError(f"similarity.device: {err}") from err


@dataclass
class PreparedStore:
    """The prepared views of every tap of one store, in ascending sentence-id order."""

    attrs: dict[str, Any]
    sentence_ids: np.ndarray
    taps: list[str]
    views: dict[str, sim.PreparedView] = field(default_factory=dict)
    key: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.attrs['language']}/{self.attrs['modality']}"


# --------------------------------------------------------------------------- views


def _read_sorted(store: Any, tap: str, order: np.ndarray) -> np.ndarray:
    return store.read(tap)[order].astype(np.float64)


def prepare_store(path: str | Path, options: Options, device: Any = "cpu") -> PreparedStore:
    """Prepare every tap of one activation store (rows in ascending sentence-id order)."""
    from gapscope.store import open_view

    store = open_view(path)
    ids = store.sentence_ids
    if len(np.unique(ids)) != len(ids):
        raise PreparedViewError(f"{path}: duplicate sentence ids in the store")
    order = np.argsort(ids, kind="stable")
    attrs = store.attrs
    prepared = PreparedStore(attrs, ids[order], store.taps, key=options.view_key(), path=Path(path))
    for tap in store.taps:
        prepared.views[tap] = sim.prepare_view(
            _read_sorted(store, tap, order),
            name=f"{prepared.name}/{tap}",
            device=device,
            **options.prepare_kwargs(),
        )
    return prepared


def _reduction_arrays(prefix: str, red: sim.Reduction) -> dict[str, np.ndarray]:
    return {
        f"{prefix}/u": red.u,
        f"{prefix}/s": red.s,
        f"{prefix}/w": red.w,
        f"{prefix}/rank": np.array(red.rank),
    }


def save_prepared(prepared: PreparedStore | Sequence[PreparedStore], path: str | Path) -> None:
    """Write prepared stores (one, or several of other modalities: a language's views) as
    one uncompressed ``.npz``, each under its modality (written beside, then renamed)."""
    stores = [prepared] if isinstance(prepared, PreparedStore) else list(prepared)
    modalities = [store.attrs["modality"] for store in stores]
    if not stores or len(set(modalities)) < len(modalities):
        raise ValueError(f"{path}: one prepared store per modality, got {modalities}")
    arrays = {
        f"{modality}/{name}": array
        for modality, store in zip(modalities, stores, strict=True)
        for name, array in _prepared_arrays(store).items()
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as handle:
        _write_npz_aligned(handle, arrays)
    os.replace(partial, path)


def _prepared_arrays(prepared: PreparedStore) -> dict[str, np.ndarray]:
    """The arrays of one prepared store, its metadata as JSON bytes under ``meta``."""
    arrays: dict[str, np.ndarray] = {"sentence_ids": prepared.sentence_ids}
    dims = {}
    for tap, view in prepared.views.items():
        view = view.map(sim.to_numpy)
        dims[tap] = view.dim
        if view.cca is not None:
            arrays.update(_reduction_arrays(f"{tap}/cca", view.cca))
        for i, fold in enumerate(view.folds or ()):
            arrays.update(_reduction_arrays(f"{tap}/fold{i}", fold.red))
            arrays[f"{tap}/fold{i}/proj"] = fold.proj
        for part in ("gram", "unit", "knn"):
            if getattr(view, part) is not None:
                arrays[f"{tap}/{part}"] = getattr(view, part)
    meta = {
        "format": PREPARED_FORMAT,
        "store": prepared.attrs,
        "store_path": str(prepared.path) if prepared.path else None,
        "options": prepared.key,
        "taps": prepared.taps,
        "dims": dims,
        "n": len(prepared.sentence_ids),
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    return arrays


# A prepared view is an ordinary uncompressed .npz (np.load reads it) whose members' data
# start on 64-byte boundaries, so that pair jobs map the arrays in place: a paper-shaped
# view is 55 MB, and copying it out of the zip with its CRC pass took 0.04 CPU-s of a
# 1.2 CPU-s pair job, where mapping it takes a few pages' faults.
_ALIGN = 64
_PADDING_ID = 0xD935  # the extra field zipalign pads with
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length


def _write_npz_aligned(handle: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez`` (uncompressed), each member's data padded to start at a multiple of 64
    bytes in the file (an extra field in its local header)."""
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            body = io.BytesIO()
            np.lib.format.write_array(body, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            start = handle.tell() + _LOCAL_HEADER.size + len(info.filename.encode()) + 4
            pad = -start % _ALIGN
            info.extra = struct.pack("<HH", _PADDING_ID, pad) + bytes(pad)
            archive.writestr(info, body.getvalue())


class _MappedNpz:
    """The members of an ``.npz`` as arrays read in place from a read-only memory map
    (members that are compressed, or stored off their alignment, are read as np.load does)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path)
        with open(path, "rb") as handle:
            self.map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self.members = {i.filename.removesuffix(".npy"): i for i in self.zip.infolist()}

    def __enter__(self) -> _MappedNpz:
        return self

    def __exit__(self, *exc: object) -> None:
        self.zip.close()  # the map lives as long as the arrays read from it

    def __contains__(self, key: str) -> bool:
        return key in self.members

    def __getitem__(self, key: str) -> np.ndarray:
        info = self.members[key]
        array = self._mapped(info) if info.compress_type == zipfile.ZIP_STORED else None
        if array is None:
            with self.zip.open(info) as member:
                return np.lib.format.read_array(member, allow_pickle=False)
        return array

    def _mapped(self, info: zipfile.ZipInfo) -> np.ndarray | None:
        """A stored member's array in place (None: not a plain array with a short header)."""
        signature, name_len, extra_len = _LOCAL_HEADER.unpack_from(self.map, info.header_offset)
        start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        parsed = _npy_header(self.map[start : start + min(info.file_size, 4096)])
        if signature != b"PK\x03\x04" or parsed is None or parsed[2].hasobject:
            return None
        shape, fortran, dtype, length = parsed
        count, offset = math.prod(shape), start + length
        if info.file_size != length + count * dtype.itemsize:
            raise ValueError(f"member {info.filename!r} is not the size its header states")
        array = np.frombuffer(self.map, dtype=dtype, count=count, offset=offset)
        if offset % dtype.alignment:
            array = array.copy()
        return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


# the header numpy writes (``repr`` of its dict), parsed by this pattern in a tenth of the
# time of numpy's general parser (``ast.literal_eval``), which took 0.03 CPU-s for a pair
# job's 1,600 members; any other header goes to numpy's parser
_NPY_HEADER = re.compile(
    r"\{'descr': '([<>|=]?\w+)', 'fortran_order': (True|False), 'shape': \(([\d, ]*)\), \} *\n"
)


def _npy_header(head: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int] | None:
    """Shape, Fortran order, dtype and header length of the ``.npy`` data starting ``head``
    (None: not readable from these bytes)."""
    if head[:6] != b"\x93NUMPY" or len(head) < 12:
        return None
    size, begin = (struct.unpack_from("<H", head, 8)[0], 10) if head[6] == 1 else (None, 12)
    if size is not None:
        match = _NPY_HEADER.fullmatch(head[begin : begin + size].decode("latin1"))
        if match:
            shape = tuple(int(v) for v in match.group(3).replace(" ", "").split(",") if v)
            return shape, match.group(2) == "True", np.dtype(match.group(1)), begin + size
    stream = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(stream)
        shape, fortran, dtype = getattr(np.lib.format, f"read_array_header_{version[0]}_0")(stream)
    except (ValueError, AttributeError):
        return None
    return shape, fortran, dtype, stream.tell()


def _load_reduction(files: Any, prefix: str) -> sim.Reduction:
    return sim.Reduction(
        files[f"{prefix}/u"],
        files[f"{prefix}/s"],
        files[f"{prefix}/w"],
        int(files[f"{prefix}/rank"]),
    )


def load_prepared(
    path: str | Path,
    options: Options,
    *,
    modality: str | None = None,
    store: str | Path | None = None,
    taps: Sequence[str] | None = None,
    device: Any = "cpu",
) -> PreparedStore:
    """Read the prepared store of ``modality`` (None: the file's only one) from a prepared
    file, the given taps or all; refuse one made with other options.

    ``store``: where its activation store is now (default: where it was when prepared),
    read only to align ids that differ between two views, or to bootstrap.
    """
    path = Path(path)
    with _open_prepared(path) as files:
        return _read_prepared(path, _view_of(files, modality), options, store, taps, device)


def _open_prepared(path: Path) -> _MappedNpz:
    try:
        return _MappedNpz(path)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise PreparedViewError(f"{path}: not a readable prepared view ({err})") from err


def _view_of(files: _MappedNpz, modality: str | None) -> _Within:
    """The members of the ``modality`` view of a prepared file (None: its only one)."""
    held = sorted(
        key.split("/")[0] for key in files.members if key.count("/") == 1 and key.endswith("/meta")
    )
    if not held:
        raise PreparedViewError(
            f"{files.path}: not a prepared view of format {PREPARED_FORMAT} (no <modality>/meta); "
            "delete it to rebuild"
        )
    if modality is None and len(held) > 1:
        raise PreparedViewError(f"{files.path}: holds the views of {held}; name the modality")
    modality = held[0] if modality is None else modality
    if modality not in held:
        raise PreparedViewError(f"{files.path}: no {modality} view (it holds {held})")
    return _Within(files, modality)


class _Within:
    """The members of one view of a prepared file (keys without its modality's prefix)."""

    def __init__(self, files: _MappedNpz, modality: str) -> None:
        self.files, self.prefix = files, f"{modality}/"

    def __contains__(self, key: str) -> bool:
        return self.prefix + key in self.files

    def __getitem__(self, key: str) -> np.ndarray:
        return self.files[self.prefix + key]


def _read_prepared(
    path: Path,
    files: Any,
    options: Options,
    store: str | Path | None,
    taps: Sequence[str] | None,
    device: Any,
) -> PreparedStore:
    try:
        meta = json.loads(files["meta"].tobytes().decode("utf-8"))
    except (ValueError, KeyError) as err:
        raise PreparedViewError(f"{path}: not a readable prepared view ({err})") from err
    if meta.get("format") != PREPARED_FORMAT:
        raise PreparedViewError(
            f"{path}: prepared-view format {meta.get('format')!r}, "
            f"expected {PREPARED_FORMAT}; delete it to rebuild"
        )
    if meta["options"] != json.loads(json.dumps(options.view_key())):
        raise PreparedViewError(
            f"{path}: prepared with options {meta['options']}, but this run asks for "
            f"{options.view_key()}; delete it to rebuild"
        )
    prepared = PreparedStore(
        meta["store"],
        files["sentence_ids"],
        list(meta["taps"]),
        key=meta["options"],
        path=Path(store or meta["store_path"]) if store or meta.get("store_path") else None,
    )
    unknown = [tap for tap in taps or () if tap not in prepared.taps]
    if unknown:
        raise PreparedViewError(f"{path}: no tap {unknown} (it has {prepared.taps})")
    for tap in taps if taps is not None else prepared.taps:
        prefix = f"{tap}/cca"
        view = sim.PreparedView(
            meta["n"],
            meta["dims"][tap],
            _load_reduction(files, prefix) if f"{prefix}/u" in files else None,
            tuple(
                sim.Fold(_load_reduction(files, f"{tap}/fold{i}"), files[f"{tap}/fold{i}/proj"])
                for i in (0, 1)
            )
            if f"{tap}/fold0/u" in files
            else None,
            *(files[f"{tap}/{part}"] if f"{tap}/{part}" in files else None
              for part in ("gram", "unit", "knn")),
        )  # fmt: skip
        prepared.views[tap] = _to_device(view, device)
    return prepared


def _to_device(view: sim.PreparedView, device: Any) -> sim.PreparedView:
    if device == "cpu":
        return view
    import torch

    return view.map(lambda a: torch.as_tensor(a, device=device))


# --------------------------------------------------------------------------- pairs


def align_ids(
    ids_a: np.ndarray, ids_b: np.ndarray, names: tuple[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the sentence ids both views hold, in ascending id order.

    Views are aligned by id, never by position; ids held by only one view are dropped and
    counted in the log, so N is the size of the intersection (recorded with every score).
    """
    for ids, name in zip((ids_a, ids_b), names, strict=True):
        if len(np.unique(ids)) != len(ids):
            raise ValueError(f"view {name}: duplicate sentence ids in its store")
    common, ia, ib = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    if len(common) < 3:
        raise ValueError(
            f"views {names[0]} and {names[1]} share {len(common)} sentence ids; at least 3 needed"
        )
    only_a, only_b = len(ids_a) - len(common), len(ids_b) - len(common)
    if only_a or only_b:
        log.warning(
            "alignment: %d ids only in %s, %d only in %s; comparing %d shared ids",
            only_a,
            names[0],
            only_b,
            names[1],
            len(common),
        )
    return ia, ib


def _check_same_run(a: PreparedStore, b: PreparedStore, model: str, where: tuple) -> None:
    for key in STORED_FIELDS:
        if key not in REQUIRED_FIELDS and (key not in a.attrs or key not in b.attrs):
            continue  # a field stores gained later: compared where both stores record it
        if a.attrs.get(key) != b.attrs.get(key):
            raise StoreError(
                f"{where[0]} and {where[1]} come from different runs: {key} is "
                f"{a.attrs.get(key)!r} vs {b.attrs.get(key)!r}; rerun the stale store"
            )
    if a.attrs["model"] != model:
        raise StoreError(f"{where[0]}: store of model {a.attrs['model']!r}, expected {model!r}")


def tap_pairs(adapter: str, a: PreparedStore, b: PreparedStore) -> tuple[str, list, list]:
    """The comparison name, the (tap_a, tap_b) pairs of two views, and which of them live in
    one space (retrieval is computed there only: across languages every tap pair, across
    modalities the pairs the adapter's family declares)."""
    from gapscope.models import cross_modal_pairs, family

    mod_a, mod_b = a.attrs["modality"], b.attrs["modality"]
    if mod_a != mod_b:
        pairs = cross_modal_pairs(adapter, a.taps, b.taps)
        return "cross_modal", pairs, [family(adapter).one_space(*pair) for pair in pairs]
    pairs = [(t, t) for t in a.taps if t in set(b.taps)]
    return f"cross_lingual_{mod_a}", pairs, [True] * len(pairs)


def _restrict(
    prepared: PreparedStore, rows: np.ndarray, taps: Sequence[str], options: Options, device: Any
) -> PreparedStore:
    """The same store prepared again on a subset of its rows (ascending id order kept)."""
    from gapscope.store import open_view

    store = open_view(_store_path(prepared))
    order = _store_rows(store, prepared.sentence_ids[rows], prepared)
    subset = PreparedStore(
        prepared.attrs, prepared.sentence_ids[rows], prepared.taps, key=prepared.key,
        path=prepared.path,
    )  # fmt: skip
    for tap in dict.fromkeys(taps):
        subset.views[tap] = sim.prepare_view(
            _read_sorted(store, tap, order),
            name=f"{prepared.name}/{tap}",
            device=device,
            **options.prepare_kwargs(),
        )
    return subset


def _store_path(prepared: PreparedStore) -> Path:
    if prepared.path is None:
        raise PreparedViewError(f"{prepared.name}: its store is unknown, cannot read its rows")
    return prepared.path


def _store_rows(store: Any, ids: np.ndarray, prepared: PreparedStore) -> np.ndarray:
    """Rows of ``store`` holding ``ids`` (in that order); refused, with the store named, when
    the store no longer holds them (it changed after its view was prepared)."""
    now = store.sentence_ids
    order = np.argsort(now, kind="stable")
    held = now[order]
    pos = np.minimum(np.searchsorted(held, ids), max(len(held) - 1, 0))
    missing = ids[held[pos] != ids] if len(held) else ids
    if len(missing):
        raise PreparedViewError(
            f"{prepared.path}: the store no longer holds {len(missing)} sentence ids of its "
            f"prepared view {prepared.name} (e.g. {missing[:5].tolist()}); it changed after "
            "the view was prepared: rerun its similarity_view job"
        )
    return order[pos]


def compare_prepared(
    a: PreparedStore,
    b: PreparedStore,
    *,
    model: str,
    adapter: str,
    options: Options,
    device: Any = "cpu",
) -> dict[str, list]:
    """Every metric at every matching tap of two prepared stores, as tidy columns."""
    where = (str(a.path or a.name), str(b.path or b.name))
    _check_same_run(a, b, model, where)
    comparison, pairs, one_space = tap_pairs(adapter, a, b)
    if not pairs:
        raise PreparedViewError(f"{where[0]} and {where[1]} have no tap to compare")
    ia, ib = align_ids(a.sentence_ids, b.sentence_ids, where)
    if len(ia) < len(a.sentence_ids):
        a = _restrict(a, ia, [ta for ta, _ in pairs], options, device)
    if len(ib) < len(b.sentence_ids):
        b = _restrict(b, ib, [tb for _, tb in pairs], options, device)
    n = len(ia)
    names = [(f"{a.name}/{ta}", f"{b.name}/{tb}") for ta, tb in pairs]
    items = [
        (
            a.views[ta],
            b.views[tb],
            sim.pair_permutations(options.seed, na, nb, n, options.null_permutations)
            if options.null_permutations
            else None,
        )
        for (ta, tb), (na, nb) in zip(pairs, names, strict=True)
    ]
    retrieval = [m for m in options.metrics if m in sim.RETRIEVAL_METRICS]
    others = [m for m in options.metrics if m not in retrieval]
    scores: list[dict[str, sim.PairScores]] = [{} for _ in items]
    shared = [i for i, ok in enumerate(one_space) if ok]
    for i in shared if retrieval else ():
        if items[i][0].dim != items[i][1].dim:
            raise PreparedViewError(
                f"{where[0]} ~ {where[1]}: {adapter} declares taps {pairs[i]} one space, but "
                f"they are {items[i][0].dim} and {items[i][1].dim} wide (no retrieval possible)"
            )
    try:
        if others:
            got = sim.compare_views(items, others, heldout=options.heldout and options.cca)
            for row, values in zip(scores, got, strict=True):
                row.update(values)
        if retrieval and shared:
            got = sim.compare_views([items[i] for i in shared], retrieval)
            for i, row in zip(shared, got, strict=True):
                scores[i].update(row)
    except ValueError as err:
        raise ValueError(f"{where[0]} ~ {where[1]}: {err}") from err
    ci = _bootstrap_ci(a, b, pairs, names, options) if options.bootstrap else {}
    lang_a, mod_a = a.attrs["language"], a.attrs["modality"]
    lang_b, mod_b = b.attrs["language"], b.attrs["modality"]
    columns: dict[str, list] = {c: [] for c in TIDY_COLUMNS}
    for metric in options.metrics:
        for i, (ta, tb) in enumerate(pairs):
            if metric not in scores[i]:
                continue  # retrieval across two spaces: no row
            s = scores[i][metric]
            low, high = ci.get((metric, i), (np.nan, np.nan))
            row = (
                model, comparison, lang_a, mod_a, ta, lang_b, mod_b, tb, metric, s.score,
                s.null_mean, s.null_std, s.heldout, low, high, s.n, s.k_a, s.k_b,
            )  # fmt: skip
            for column, value in zip(TIDY_COLUMNS, row, strict=True):
                columns[column].append(value)
    return columns


def compare_files(
    files: Sequence[str | Path],
    comparisons: Sequence[Sequence[str]],
    stores: Sequence[str | Path],
    *,
    model: str,
    adapter: str,
    options: Options,
    device: Any = "cpu",
) -> dict[str, list]:
    """The comparisons of one job: for each (modality_a, modality_b) of ``comparisons``, the
    ``modality_a`` view of prepared file ``files[0]`` against the ``modality_b`` view of
    ``files[1]`` (``stores``: their activation stores, two per comparison), rows one after
    another."""
    if len(files) != 2 or len(stores) != 2 * len(comparisons):
        raise ValueError(
            f"two prepared files and two stores per comparison; got {files}, {comparisons} "
            f"and {stores}"
        )
    columns: dict[str, list] = {c: [] for c in TIDY_COLUMNS}
    with ExitStack() as stack:  # each file opened once, whatever its comparisons
        opened = {f: stack.enter_context(_open_prepared(Path(f))) for f in dict.fromkeys(files)}
        for i, modalities in enumerate(comparisons):
            a, b = (
                _read_prepared(Path(f), _view_of(opened[f], m), options, store, None, device)
                for f, m, store in zip(files, modalities, stores[2 * i : 2 * i + 2], strict=True)
            )
            rows = compare_prepared(
                a, b, model=model, adapter=adapter, options=options, device=device
            )
            log.info("%s ~ %s: %d rows", a.name, b.name, len(rows["score"]))
            for column in TIDY_COLUMNS:
                columns[column] += rows[column]
    return columns


def _bootstrap_ci(
    a: PreparedStore,
    b: PreparedStore,
    pairs: list[tuple[str, str]],
    names: list[tuple[str, str]],
    options: Options,
) -> dict[tuple[str, int], tuple[float, float]]:
    """Bootstrap intervals: each resample redoes both views from the stores' rows."""
    from gapscope.store import open_view

    metrics = [m for m in options.metrics if m not in sim.POINTWISE_METRICS]
    if not metrics:
        return {}
    views = {}
    for prepared, side in ((a, 0), (b, 1)):
        store = open_view(_store_path(prepared))
        rows = _store_rows(store, prepared.sentence_ids, prepared)
        for pair, name in zip(pairs, names, strict=True):
            views.setdefault(name[side], store.read(pair[side])[rows].astype(np.float64))
    table = sim.pairwise(
        views,
        names,
        metric=metrics,
        variance=options.variance,
        k=options.k,
        bootstrap=options.bootstrap,
        seed=options.seed,
        standardize=options.standardize,
        device="cpu",
    )
    per_metric = len(names)
    return {
        (row.metric, i % per_metric): (row.ci_low, row.ci_high)
        for i, row in enumerate(table.itertuples())
    }


def compare_stores(
    path_a: str | Path,
    path_b: str | Path,
    *,
    model: str,
    adapter: str,
    options: Mapping[str, Any] | Options,
    device: Any = "cpu",
) -> Any:
    """Two activation stores compared in memory (no prepared files): a pandas DataFrame."""
    opts = options if isinstance(options, Options) else Options.from_config(options)
    a, b = prepare_store(path_a, opts, device), prepare_store(path_b, opts, device)
    rows = compare_prepared(a, b, model=model, adapter=adapter, options=opts, device=device)
    return to_frame(rows)


def to_frame(columns: Mapping[str, list]) -> Any:
    """Tidy columns as a pandas DataFrame with the table's dtypes."""
    import pandas as pd

    return _typed(pd.DataFrame({c: columns[c] for c in TIDY_COLUMNS}, columns=TIDY_COLUMNS))


def _typed(frame: Any) -> Any:
    for column in _STRING_COLUMNS:
        frame[column] = frame[column].astype(object)
    for column in _INT_COLUMNS:
        frame[column] = frame[column].astype(np.int64)
    return frame


def write_rows(columns: Mapping[str, list], path: str | Path) -> None:
    """Write one pair's tidy columns as a TSV (floats in their shortest exact form).

    Plain text, not Parquet: a pair job then imports no pyarrow (a sixth of its CPU time on
    a paper-shaped pair); :func:`read_tables` reads them back exactly.
    """
    import csv

    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(TIDY_COLUMNS)
        writer.writerows(zip(*(columns[c] for c in TIDY_COLUMNS), strict=True))
    os.replace(partial, path)


def read_tables(paths: Sequence[str | Path]) -> Any:
    """The pair TSVs as one pandas DataFrame with the table's dtypes (exact floats)."""
    import pandas as pd

    floats = [c for c in TIDY_COLUMNS if c not in _STRING_COLUMNS and c not in _INT_COLUMNS]
    frames = [
        pd.read_csv(
            path,
            sep="\t",
            dtype={c: str for c in _STRING_COLUMNS},
            keep_default_na=False,
            na_values={c: ["nan"] for c in floats},
        )
        for path in paths
    ]
    if not frames:
        return to_frame({c: [] for c in TIDY_COLUMNS})
    return _typed(pd.concat(frames, ignore_index=True)[TIDY_COLUMNS])
