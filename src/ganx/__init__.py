"""ganx: a Hydra-configured lab for training and studying GANs.

The Python API (each name is imported on first use, so ``import ganx`` stays fast; training is
``ganx.fit`` because ``ganx.train`` is the module behind ``ganx-train``):

    import ganx
    cfg = ganx.compose("loss=hinge", "reg=dat", "train.steps=500")   # as ganx-train composes
    result = ganx.fit(cfg, "runs/hinge_dat")                           # a dict: status, metrics
    G = ganx.load_generator("runs/hinge_dat/checkpoints/last.pt")      # EMA G, run's bn_stats
    images = G.sample(64, seed=1)                                      # float NCHW in [-1, 1]
    ganx.evaluate(images, ["fid_mnist", "kid_mnist"])                  # vs the data set's images
    ganx.evaluate("a/folder/of/pngs", ["fid_mnist"], dataset="mnist5k")
    ganx.__version__
"""

from __future__ import annotations

from importlib import import_module

__all__ = ["compose", "fit", "load_generator", "evaluate", "Generator", "__version__"]

_API = {"compose", "fit", "load_generator", "evaluate", "Generator", "as_images"}


def __getattr__(name: str):
    # the version too is found on first use: importlib.metadata costs shell completion 0.2 s
    if name == "__version__":
        from .records import ganx_version

        return ganx_version()
    if name in _API:
        return getattr(import_module(".api", __name__), name)
    raise AttributeError(f"module 'ganx' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _API | {"__version__"})
