"""Matrix products whose rounding does not depend on the machine's cores.

OpenBLAS divides a product among its threads in ways that change how it rounds: with 1 and 2 threads, the
nearest-class distances of a full-scale label_noise_0.3 build differ in their last bits, and exact ties between
classes decide which label a record gets. So the products behind features and distances run on one thread, on
every machine: the same parameters give the same bytes whatever the core count. On two cores this costs the
distances some wall time and saves the CPU that BLAS threads burn while they wait for the next product.
"""

from __future__ import annotations

from functools import lru_cache

from threadpoolctl import ThreadpoolController


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # finds the loaded BLAS libraries once (a few ms)


def one_blas_thread():
    """A context manager in which every BLAS library numpy and scipy use runs on one thread."""
    return _controller().limit(limits=1, user_api="blas")
