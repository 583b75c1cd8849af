"""ganx-train's heavy imports, made once per process with Python's garbage collector paused,
then frozen (:func:`import_training_modules`).

Importing torch, torch._dynamo and ganx's training modules creates some 300,000 objects that
live as long as the process. While they are being created the cyclic garbage collector keeps
running full collections over all of them (each one longer than the last): 0.7 s of CPU in a
1-step toy run on a 2-core CPU, a quarter of what ganx adds to ``import torch``. Paused during
the imports and then frozen (``gc.freeze``: moved to a generation no collection scans), those
objects cost no collection again, in this run or in the later jobs of a sweep.

torch._dynamo is imported here on purpose: every ``torch.optim`` optimiser imports it on first
use (``Optimizer.add_param_group``, ``zero_grad`` and ``step`` are wrapped by
``torch._disable_dynamo``, which imports it), so every training process pays for it anyway;
importing it under the pause makes that import cheaper, not more frequent.
"""

from __future__ import annotations

import contextlib
import gc

_imported = False


def import_training_modules() -> None:
    """Import torch, torch._dynamo and the training loop's modules with the collector paused,
    then freeze everything that exists (once per process; later calls return at once). The
    garbage made so far (Hydra's composition) is collected first, so nothing dead is frozen."""
    global _imported
    if _imported:
        return
    _imported = True
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        import torch  # noqa: F401

        with contextlib.suppress(ImportError):  # a torch without dynamo: nothing to import
            import torch._dynamo  # noqa: F401

        from . import loop  # noqa: F401
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
