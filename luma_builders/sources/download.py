"""`luma download`: fetch what the published variants read, once, so that later builds run offline.

Metadata (datalist, texts, EDM pickle), CIFAR and the split files are read (and verified) as a build reads them;
then the clips, concurrently, into the shared HF cache: those the split files and the OOD classes use, or every
clip with `everything=True` (diversity sampling, `low_diversity`, draws from all in-distribution clips).
An interrupted download resumes: finished files are cache entries, and only verified files become one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from luma_builders.classes import NUM_ID_CLASSES
from luma_builders.plan.planning import SourceData, load_source
from luma_builders.sources.locations import Source
from luma_builders.sources.transfer import in_parallel, showing_url_progress

DOWNLOAD_WORKERS = 16  # ~29,000 single small files: latency, not bandwidth, bounds the time


@dataclass(frozen=True)
class DownloadSummary:
    metadata_files: int
    clips: int


def clips_to_fetch(data: SourceData, everything: bool) -> list[str]:
    """The clips' paths: every clip, or those of the published split files and of the OOD classes."""
    if everything:
        ids = np.arange(len(data.audio_paths))
    else:
        listed = [ids for (modality, _split), ids in data.split_ids.items() if modality == "audio"]
        ids = np.union1d(np.concatenate(listed), np.flatnonzero(data.audio_labels >= NUM_ID_CLASSES))
    return [data.audio_file(int(i)) for i in ids]


def download(source: Source, everything: bool = False, progress_factory=None) -> DownloadSummary:
    """Read the metadata (verified, cached; a byte bar per URL download) and fetch the clips with one progress bar."""
    with showing_url_progress(progress_factory) if progress_factory else contextlib.nullcontext():
        data = load_source(source)
    clips = clips_to_fetch(data, everything)
    progress = progress_factory(total=len(clips), unit="clip", desc="clips") if progress_factory else None
    try:
        in_parallel(source.read, clips, workers=DOWNLOAD_WORKERS, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    return DownloadSummary(len(data.file_checksums), len(clips))
