"""Pickles from a source cannot run code: malicious ones fail naming the file and the global, and never run."""

import contextlib
import functools
import io
import os
import pickle
import re
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import serve
from pandas.core.internals.blocks import Block
from test_bad_input import assert_nothing_half_written, build

from luma_builders.classes import CLASS_NAMES
from luma_builders.sources import safe_pickle
from luma_builders.sources.readers import SourceError, cifar_members, read_cifar10, read_edm, write_checksum_file

EDM_HOLDS = "LUMA pickles hold only a DataFrame of arrays and strings"
CIFAR_HOLDS = "CIFAR pickles hold only dicts, lists, strings and numpy arrays"
BATCH = "cifar-10-batches-py/data_batch_1"


def refusal(refused: str, name: str, holds: str) -> str:
    return re.escape(f"{refused} is not allowed in {name}: {holds}")


class Call:
    """Pickles as `func(*args)`: what a malicious pickle asks its loader to run."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self):
        raise AssertionError("pickle only needs a Call to be callable, to accept it as the function of another")


def _qualname(func) -> str:
    return f"{func.__module__}.{func.__name__}"


def edm_frame(count: int = 3) -> pd.DataFrame:
    images = np.random.default_rng(0).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    return pd.DataFrame({"image": list(images), "label": list(CLASS_NAMES[:count])})


def _in_a_frame_cell(payload):
    frame = edm_frame()
    frame.loc[1, "image"] = payload  # one object-array cell of an otherwise valid EDM frame
    return frame


# name -> (marker -> the object to pickle, the global the loader must refuse first)
PAYLOADS = {
    "os.system": (lambda marker: Call(os.system, f"touch {marker}"), _qualname(os.system)),
    "eval": (lambda marker: Call(eval, f"__import__('os').system('touch {marker}')"), "builtins.eval"),
    "exec": (lambda marker: Call(exec, f"import os; os.system('touch {marker}')"), "builtins.exec"),
    "Popen": (lambda marker: Call(subprocess.Popen, ["touch", str(marker)]), "subprocess.Popen"),
    "check_output": (lambda marker: Call(subprocess.check_output, ["touch", str(marker)]), "subprocess.check_output"),
    "getattr": (
        lambda marker: Call(Call(getattr, Call(__import__, "os"), "system"), f"touch {marker}"),
        "builtins.getattr",
    ),
    "partial": (lambda marker: Call(functools.partial(os.system, f"touch {marker}")), "functools.partial"),
    "frame cell": (lambda marker: _in_a_frame_cell(Call(os.system, f"touch {marker}")), _qualname(os.system)),
}


def payload(case: str, marker: Path, protocol: int = 4) -> tuple[bytes, str]:
    make, refused = PAYLOADS[case]
    return pickle.dumps(make(marker), protocol=protocol), refused


def cifar_archive_with(original: bytes, member: str, data: bytes) -> bytes:
    """`original` (a CIFAR tar.gz) with `member` replaced by `data`."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(original)) as source, tarfile.open(fileobj=out, mode="w:gz") as target:
        for entry in source:
            content = source.extractfile(entry).read() if entry.isfile() else None
            if entry.name == member:
                content, entry.size = data, len(data)
            target.addfile(entry, None if content is None else io.BytesIO(content))
    return out.getvalue()


def malicious_batch(marker: Path) -> tuple[bytes, str]:
    batch = {"batch_label": "training batch 1 of 5", "labels": [0], "data": np.zeros((1, 3072), np.uint8)}
    batch["filenames"] = [Call(os.system, f"touch {marker}")]
    return pickle.dumps(batch, protocol=2), _qualname(os.system)


@pytest.mark.parametrize("case", PAYLOADS)
def test_each_payload_runs_under_plain_pickle(case, tmp_path):
    """So that the marker checks below can fail: plain `pickle.loads` runs every one of these payloads."""
    marker = tmp_path / "ran"
    result = pickle.loads(payload(case, marker)[0])
    if isinstance(result, subprocess.Popen):
        result.wait()
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("case", PAYLOADS)
def test_edm_reader_refuses_the_global_and_runs_nothing(case, protocol, tmp_path):
    marker = tmp_path / "ran"
    data, refused = payload(case, marker, protocol)
    with pytest.raises(SourceError, match=refusal(refused, "edm_images.pickle", EDM_HOLDS)):
        read_edm(data, "edm_images.pickle")
    assert not marker.exists()


def test_cifar_reader_refuses_the_global_and_runs_nothing(mini_source, tmp_path):
    marker = tmp_path / "ran"
    data, refused = malicious_batch(marker)
    archive = cifar_archive_with((mini_source / "cifar-10-python.tar.gz").read_bytes(), BATCH, data)
    with pytest.raises(SourceError, match=refusal(refused, f"cifar-10-python.tar.gz member {BATCH}", CIFAR_HOLDS)):
        read_cifar10(cifar_members(archive, "cifar-10-python.tar.gz"), "cifar-10-python.tar.gz")
    assert not marker.exists()


def _plant(root: Path, target: str, marker: Path) -> tuple[str, str, str]:
    """Replace a source file by a malicious one that SHA256SUMS vouches for.

    Returns the refused global, the name the error gives after the source root, and the allow-list's phrase.
    """
    if target == "edm":
        data, refused = payload("frame cell", marker)
        (root / "edm_images.pickle").write_bytes(data)
        named = ("edm_images.pickle", EDM_HOLDS)
    else:
        data, refused = malicious_batch(marker)
        archive = root / "cifar-10-python.tar.gz"
        archive.write_bytes(cifar_archive_with(archive.read_bytes(), BATCH, data))
        named = (f"cifar-10-python.tar.gz member {BATCH}", CIFAR_HOLDS)
    write_checksum_file(root)
    return refused, *named


@pytest.mark.parametrize(("target", "over_http"), [("edm", False), ("edm", True), ("cifar", True)])
def test_a_build_refuses_a_vouched_for_malicious_pickle(target, over_http, source_copy, tmp_path):
    marker = tmp_path / "ran"
    refused, name, holds = _plant(source_copy, target, marker)
    cache = tmp_path / "cache"
    with (
        serve(source_copy) if over_http else contextlib.nullcontext(str(source_copy)) as root,
        pytest.raises(SourceError, match=refusal(refused, f"{root}/{name}", holds)),
    ):
        build(root, cache)
    assert not marker.exists()
    assert_nothing_half_written(cache)


def crafted(kind: type, change) -> bytes:
    """An EDM frame's pickle, each `kind` object's reduce tuple passed through `change`: only allowed globals."""

    class Crafting(pickle.Pickler):
        def reducer_override(self, obj):
            return change(*obj.__reduce__()) if isinstance(obj, kind) else NotImplemented

    out = io.BytesIO()
    Crafting(out, protocol=4).dump(edm_frame())
    return out.getvalue()


def _block_past_the_columns(unpickle_block, args):
    values, _placement, ndim = args
    return unpickle_block, (values, slice(10**8, 10**8 + 1, 1), ndim)


def _offsets_past_the_data(restore_array, args):
    arrow_type, length, null_count, offset, (validity, _offsets, data), children, dictionary = args[0]
    offsets = pa.py_buffer(np.arange(length + 1, dtype=np.int64) * 10**6)
    return restore_array, ((arrow_type, length, null_count, offset, [validity, offsets, data], children, dictionary),)


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        (Block, _block_past_the_columns, "unexpected block placements"),
        (pa.Array, _offsets_past_the_data, "larger than values array"),
    ],
)
def test_allowed_globals_with_crafted_arguments_are_checked_not_trusted(kind, change, message):
    """pandas writes past an array's end for a block placed past the columns (it crashes), and pyarrow's
    `_restore_array` takes string offsets on trust: the rebuild checks both before any of it is used."""
    unchanged = safe_pickle.loads(crafted(kind, lambda *reduced: reduced), safe_pickle.EDM)
    pd.testing.assert_frame_equal(unchanged, edm_frame())
    with pytest.raises(SourceError, match=rf"edm_images\.pickle: not a readable pickle \(.*{message}"):
        read_edm(crafted(kind, change), "edm_images.pickle")


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("index", [None, pd.Index([7, 3, 11])])
def test_a_frame_pickled_by_the_installed_pandas_loads_equal(protocol, index):
    frame = edm_frame()
    if index is not None:
        frame.index = index
    loaded = safe_pickle.loads(pickle.dumps(frame, protocol=protocol), safe_pickle.EDM)
    pd.testing.assert_frame_equal(loaded, frame)
    assert all(a.dtype == np.uint8 and (a == b).all() for a, b in zip(loaded["image"], frame["image"], strict=True))
    edm = read_edm(pickle.dumps(frame, protocol=protocol), "edm_images.pickle")
    assert np.array_equal(edm.images, np.stack(frame["image"])) and edm.labels.tolist() == [0, 1, 2]


def test_a_python3_protocol_2_cifar_batch_with_bytes_loads():
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [3, 1],
        b"data": np.arange(2 * 3072, dtype=np.uint16).astype(np.uint8).reshape(2, 3072),
        b"filenames": [b"apple_s_000001.png", b"bear_s_000002.png"],
    }
    data = pickle.dumps(batch, protocol=2)
    assert b"_codecs" in data  # Python 3 writes bytes at protocol 2 as `_codecs.encode` calls
    loaded = safe_pickle.loads(data, safe_pickle.CIFAR)
    assert loaded.keys() == batch.keys() and loaded[b"filenames"] == batch[b"filenames"]
    assert loaded[b"data"].dtype == np.uint8 and np.array_equal(loaded[b"data"], batch[b"data"])
