"""Start-up objects out of the cyclic garbage collector's way (issue 19).

After start-up a sync process holds objects that live as long as it does: modules, the
settings, the mapping's compiled tables, SQLAlchemy's metadata, pydantic models.
CPython's cyclic collector looks at them again at every collection of the older
generations, and the drain allocates enough (the DICOM JSON of every study) to run such
collections often; ``tests/bench/bench_cpu.py`` measures what that costs per study
(saving ``gc_freeze``).

:func:`gc.freeze` (Python 3.7+) moves every object alive at that moment to a permanent
generation the collector ignores; reference counting still frees them.  Done once per
process, after a full collection so that no garbage is frozen with them.
"""

from __future__ import annotations

import gc

_done = False


def freeze_startup_heap() -> None:
    """Collect once, then freeze what is left; later calls do nothing."""
    global _done
    if _done:
        return
    gc.collect()
    gc.freeze()
    _done = True
