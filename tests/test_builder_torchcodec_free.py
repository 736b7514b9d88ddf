"""Building and streaming undecoded need no torchcodec: `import luma` loads neither torch nor torchcodec, and where
importing torchcodec fails (as torchcodec 0.17 does beside CPU torch 2.13: libnvrtc) a build still succeeds, with
the same bytes, decoding through `datasets` says what to do, and `luma.decode_without_torchcodec` decodes anyway."""

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile
from test_builder import build, undecoded

ROOT = Path(__file__).resolve().parent.parent
SPLITS = ("train", "test", "ood")


def python(script: str, *args: str, pythonpath: tuple[Path, ...] = ()) -> dict:
    """Run `script` in a fresh interpreter on this checkout (after `pythonpath`); its last stdout line is JSON."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (*pythonpath, ROOT))}
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def broken_torchcodec(tmp_path_factory) -> Path:
    """A folder that, first on PYTHONPATH, shadows torchcodec with a package that fails to load like 0.17 does."""
    folder = tmp_path_factory.mktemp("broken")
    (folder / "torchcodec").mkdir()
    (folder / "torchcodec" / "__init__.py").write_text(
        'raise RuntimeError("Could not load libtorchcodec: libnvrtc.so.13: cannot open shared object file")\n'
    )
    return folder


# Builds, then reads the build back the way a new session does: a builder restored from its cache.
IN_A_BROKEN_ENVIRONMENT = """
import hashlib, itertools, json, sys
import numpy as np
from luma import Luma, decode_without_torchcodec

def digests(records):
    return {
        r["id"]: [hashlib.sha256(np.asarray(r[m] if m == "image" else r[m]["array"]).tobytes()).hexdigest()
                  for m in ("image", "audio")] + [r["audio"]["sampling_rate"], str(r["audio"]["array"].dtype)]
        for r in records
    }

def decoding_error(read):
    try:
        read()
    except ImportError as err:
        return str(err)

builder = Luma("clean", data_dir=sys.argv[1], cache_dir=sys.argv[2])
builder.download_and_prepare()
imported = [m for m in ("torch", "torchcodec") if m in sys.modules]
builder = Luma("clean", data_dir=sys.argv[1], cache_dir=sys.argv[2])
stream = builder.as_streaming_dataset("train")
first = next(iter(stream.decode(False)))
errors = [decoding_error(lambda: next(iter(stream)))]
builder.download_and_prepare()  # found in the cache
errors.append(decoding_error(lambda: builder.as_dataset("train")[0]))
train = decode_without_torchcodec(builder.as_dataset("train"))
decoded = {
    "stream": digests(itertools.islice(decode_without_torchcodec(stream), 40)),
    "dataset": digests(train[i] for i in range(0, len(train), 7)),
}
result = {"cache_dir": builder.cache_dir, "imported": imported, "first": first, "errors": errors, "decoded": decoded}
print(json.dumps(result, default=bytes.hex))
"""


@pytest.fixture(scope="module")
def broken(mini_source, broken_torchcodec, tmp_path_factory) -> dict:
    cache = str(tmp_path_factory.mktemp("broken-cache"))
    return python(IN_A_BROKEN_ENVIRONMENT, str(mini_source), cache, pythonpath=(broken_torchcodec,))


def test_import_luma_loads_neither_torch_nor_torchcodec():
    script = "import json, sys, luma; print(json.dumps([m for m in ('torch', 'torchcodec') if m in sys.modules]))"
    assert python(script) == []


@pytest.fixture(scope="module")
def reference(mini_source, tmp_path_factory) -> datasets.GeneratorBasedBuilder:
    return build(mini_source, tmp_path_factory.mktemp("cache"))  # in this process, with the working torchcodec


def test_build_without_a_loadable_torchcodec_gives_the_same_bytes(broken, reference):
    assert broken["imported"] == []  # not even torch: the clean build needs neither
    for split in SPLITS:
        loaded = datasets.Dataset.from_file(str(Path(broken["cache_dir"]) / f"luma-{split}.arrow"))  # any loader
        assert type(loaded.features["audio"]) is datasets.Audio
        assert loaded.features == reference.info.features
        assert loaded.data.table.equals(reference.as_dataset(split).data.table)
    samples, _ = soundfile.read(io.BytesIO(undecoded(loaded)[0]["audio"]["bytes"]), dtype="float32")
    assert np.allclose(loaded[0]["audio"]["array"], samples, atol=1e-4)  # decoding on load works as before


def test_streaming_undecoded_and_decoding_without_a_loadable_torchcodec(broken, reference):
    first = undecoded(reference.as_dataset("train"))[0]
    for modality in ("audio", "image"):
        assert bytes.fromhex(broken["first"][modality]["bytes"]) == first[modality]["bytes"]
        assert broken["first"][modality]["path"] is None
    assert len(broken["errors"]) == 2  # decoding a streamed record, then a row of the prepared build
    for error in broken["errors"]:  # each says which pair works and how to do without
        assert "torch 2.13.0 with torchcodec 0.13.0" in error and "Audio(decode=False)" in error


def test_decoding_without_torchcodec_gives_what_torchcodec_gives(broken, reference):
    # The broken environment decoded a stream and the prepared split with LUMA's WAV reader; here torchcodec works.
    by_id = {row["id"]: row for row in reference.as_dataset("train")}
    for way in ("stream", "dataset"):
        assert len(broken["decoded"][way]) >= 20
        for record_id, (image, audio, rate, dtype) in broken["decoded"][way].items():
            expected = by_id[record_id]
            assert image == hashlib.sha256(np.asarray(expected["image"]).tobytes()).hexdigest()
            assert audio == hashlib.sha256(expected["audio"]["array"].tobytes()).hexdigest()
            assert (rate, dtype) == (expected["audio"]["sampling_rate"], str(expected["audio"]["array"].dtype))
