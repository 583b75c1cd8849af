"""The keys each metric name logs, and which direction of each key is better.

Kept free of torch so that ``ganx-report`` and the config checks can use it cheaply. The keys
state their protocol: ``fid_mnist`` with 2,000 samples logs ``fid2k_mnist`` (see
:func:`count_label`).
"""

from __future__ import annotations

# a key starting with one of these is better when lower; every other metric key when higher
# (is, classes, modes, high_quality, precision, recall)
LOWER_IS_BETTER = ("fid", "kid", "class_kl", "mode_kl")


def count_label(n: int) -> str:
    """Protocol tag for a sample count: 500, 2k, 10k, 2.5k."""
    return f"{n / 1000:g}k" if n >= 1000 else str(n)


def logged_keys(metric: str, num_samples: int, dataset: str) -> list[str]:
    """The keys ``metric`` (a name in ``eval.metrics``) writes to ``metrics.jsonl``."""
    if metric == "modes":
        return [f"modes_{dataset}", f"high_quality_{dataset}", f"mode_kl_{dataset}"]
    if metric == "modes_stacked_mnist":
        n = count_label(num_samples)
        return [f"modes{n}_stacked_mnist", f"mode_kl{n}_stacked_mnist"]
    kind, _, extractor = metric.rpartition("_")
    tag = f"{count_label(num_samples)}_{extractor}"
    if kind == "pr":
        return [f"precision{tag}", f"recall{tag}"]
    if kind == "classes":
        return [f"classes{tag}", f"class_kl{tag}"]
    return [f"{kind}{tag}"]


def lower_is_better(key: str) -> bool:
    return key.startswith(LOWER_IS_BETTER)


def objective_mode(key: str, override: str | None = None) -> str:
    """``min`` or ``max``: ``eval.mode`` when set, else inferred from the key."""
    if override is not None:
        return override
    return "min" if lower_is_better(key) else "max"


def resolve_objective(objective: str, metrics: list[str], num_samples: int, dataset: str) -> str:
    """The logged key ``eval.objective`` names: a logged key as is, or a name of ``eval.metrics``
    (``fid_mnist``) mapped to the key it logs (``fid2k_mnist``). Raises ``KeyError`` with the
    keys the configured metrics log when neither fits."""
    keys = {m: logged_keys(m, num_samples, dataset) for m in metrics}
    produced = [k for ks in keys.values() for k in ks]
    if objective in produced:
        return objective
    if objective in keys and not objective.startswith("pr_"):
        return keys[objective][0]  # the metric's own key: classes_mnist -> classes2k_mnist
    if objective in keys:  # pr_mnist logs precision and recall: the user must pick one
        raise KeyError(f"{objective} logs {', '.join(keys[objective])}: name one of them")
    raise KeyError(
        f"no metric of eval.metrics logs it; they log: {', '.join(produced) or 'nothing'}"
    )
