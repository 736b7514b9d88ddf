import io
import logging
import pickle
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from http_server import serve  # noqa: E402

from luma_builders.classes import CLASS_ID, NUM_ID_CLASSES, luma_word  # noqa: E402
from luma_builders.mini.source import write_mini_source  # noqa: E402

SMALL = {"train_per_class": 4, "test_per_class": 2, "ood_per_class": 3, "spare_per_class": 1}


@pytest.fixture(scope="session")
def mini_source(tmp_path_factory) -> Path:
    """A small mini source, shared read-only by every test: copy it before changing anything."""
    return write_mini_source(tmp_path_factory.mktemp("mini"), seed=0, **SMALL)


@pytest.fixture
def source_copy(mini_source, tmp_path) -> Path:
    """A private copy of the mini source that a test may damage."""
    return Path(shutil.copytree(mini_source, tmp_path / "source"))


@pytest.fixture(scope="session")
def http_source(mini_source):
    """The mini source on 127.0.0.1 under the Hub repo's URL layout."""
    with serve(mini_source) as url:
        yield url


@pytest.fixture(autouse=True)
def _online_loopback(monkeypatch):
    # HF_HUB_OFFLINE / HF_DATASETS_OFFLINE also block 127.0.0.1; tests reach nothing else.
    import datasets.config

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)


@pytest.fixture(scope="session", autouse=True)
def _session_luma_home(tmp_path_factory):
    """Module and session fixtures run before the per-test LUMA_HOME below: they get one of the session's own, so no
    test writes into the user's ~/.cache/luma."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LUMA_HOME", str(tmp_path_factory.mktemp("session_luma_home")))
        yield


@pytest.fixture(autouse=True)
def _private_caches_and_quick_retries(monkeypatch, tmp_path_factory):
    """Each test gets its own LUMA cache; retries wait milliseconds and a stall is 2 s, so failures are quick."""
    from luma_builders.sources import transfer

    monkeypatch.setenv("LUMA_HOME", str(tmp_path_factory.mktemp("luma_home")))
    monkeypatch.setattr(
        transfer, "RETRY", transfer.RetryPolicy(base_wait=0.01, max_wait=0.05, max_retry_after=0.05, stall_seconds=2)
    )


@pytest.fixture
def restored_verbosity():
    """`luma --quiet` and `--verbose` change process-wide logging state: put it back for the other tests."""
    import datasets

    from luma_builders.cli import LOGGERS

    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    handlers = list(logging.getLogger("luma_builders").handlers)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger("luma_builders").handlers[:] = handlers
    datasets.enable_progress_bars()


def cifar_archive(path: Path) -> dict[str, dict]:
    """Every pickle of a CIFAR tarball, loaded with plain pickle (independently of luma_builders)."""
    with tarfile.open(path) as archive:
        return {m.name: pickle.loads(archive.extractfile(m).read(), encoding="latin1") for m in archive if m.isfile()}


def read_source_tables(root: Path) -> dict:
    """The source's metadata, read independently of luma_builders (pandas + pickle only).

    Image pools are lists of (HWC pixels, class id, origin) in the published pool order.
    """

    def members(name):
        return cifar_archive(root / name)

    def hwc(data):
        return np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)

    c10 = members("cifar-10-python.tar.gz")
    names10 = [luma_word(n) for n in c10["cifar-10-batches-py/batches.meta"]["label_names"]]
    c100 = members("cifar-100-python.tar.gz")
    names100 = [luma_word(n) for n in c100["cifar-100-python/meta"]["fine_label_names"]]
    edm = pd.read_pickle(root / "edm_images.pickle")

    def part(images, words, source, keep):
        rows = [i for i, w in enumerate(words) if CLASS_ID.get(w, 99) < keep]
        return [(images[i], CLASS_ID[words[i]], source) for i in rows]

    train, test = [], []
    for b in range(1, 6):
        batch = c10[f"cifar-10-batches-py/data_batch_{b}"]
        train += part(hwc(batch["data"]), [names10[x] for x in batch["labels"]], "cifar10", 50)
    batch = c100["cifar-100-python/train"]
    train += part(hwc(batch["data"]), [names100[x] for x in batch["fine_labels"]], "cifar100", 50)
    train += part(list(edm["image"]), list(edm["label"]), "edm", 50)
    batch = c10["cifar-10-batches-py/test_batch"]
    test += part(hwc(batch["data"]), [names10[x] for x in batch["labels"]], "cifar10", NUM_ID_CLASSES)
    batch = c100["cifar-100-python/test"]
    test += part(hwc(batch["data"]), [names100[x] for x in batch["fine_labels"]], "cifar100", NUM_ID_CLASSES)

    datalist = pd.read_csv(root / "audio" / "datalist.csv", keep_default_na=False)
    texts = pd.read_csv(root / "text_data.tsv", sep="\t", keep_default_na=False)
    splits = {
        path.stem: [int(float(line)) for line in path.read_text().split()]
        for path in (root / "split_indices").glob("*.txt")
    }
    return {
        "pools": {"train": train, "test": test},
        "audio_labels": datalist["label"].map(CLASS_ID).to_numpy(),
        "audio_paths": datalist["path"].tolist(),
        "texts": texts["text"].tolist(),
        "text_labels": texts["label"].map(CLASS_ID).to_numpy(),
        "splits": splits,
    }


def png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))
