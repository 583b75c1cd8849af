"""Which config keys a fast test sets to a non-default value and asserts on.

Every leaf key of every config is listed: conf/config.yaml with every option of every group
(keys of group options under the group's package, e.g. ``model.generator.ngf``), the keys the
experiment presets introduce, and each tool's config (``ganx-eval:metrics``, ...). A key is

- covered: a fast test (not marked slow) builds its value with ``setting(key, value)`` or
  ``override(key, value)`` from tests/key_cover.py, the value is a literal that differs from
  every default the configs give the key, the call's result is used, and the test asserts;
- exempt: it cannot matter in a test (a path, a Hydra plugin's own setting, a class chosen
  by the group option, an interpolation of another key); the reason is listed below or follows
  from a rule;
- UNCOVERED: neither; the script exits 1 and says what to add. KNOWN_GAPS (gaps.txt next to
  this script) lists the keys that were uncovered when this check came in: they are reported,
  not failed, and the list may only shrink (a listed key that is now covered fails the check
  until it is removed from the list).

A claim that breaks a rule (unknown key, default value, result unused, slow test, no assert)
is printed and fails the check too, so a false "covered" is visible, not counted.

    python scripts/key_coverage.py            # the uncovered keys and bad claims; exit 1 if any
    python scripts/key_coverage.py --list     # every key: covered by / exempt because / UNCOVERED
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TESTS = ROOT / "tests"
TOOLS = {
    "eval_tool.yaml": "ganx-eval",
    "sample_tool.yaml": "ganx-sample",
    "export_tool.yaml": "ganx-export",
    "dirac_study.yaml": "ganx-dirac",
}
OVERLAYS = ("experiment", "hparams_search")  # @package _global_: they set the keys above
CLAIM_FUNCTIONS = ("setting", "override")
GAPS = Path(__file__).resolve().with_name("key_coverage_gaps.txt")

# keys no test can meaningfully vary, with the reason
EXEMPT = {
    "metrics.cache_dir": "a directory (features cache); tests point it at tmp_path",
    "dataset.root": "where a downloaded data set lives; tests have no network",
    "hydra.launcher.n_jobs": "joblib launcher plugin's own setting, ganx does not read it",
    "hydra.launcher.backend": "joblib launcher plugin's own setting, ganx does not read it",
    "hydra.launcher.prefer": "joblib launcher plugin's own setting, ganx does not read it",
    "hydra.launcher.timeout_min": "submitit (SLURM) plugin setting; no SLURM here",
    "hydra.launcher.nodes": "submitit (SLURM) plugin setting; no SLURM here",
    "hydra.launcher.tasks_per_node": "submitit (SLURM) plugin setting; no SLURM here",
    "hydra.launcher.gpus_per_node": "submitit (SLURM) plugin setting; no SLURM here",
    "hydra.launcher.cpus_per_task": "submitit (SLURM) plugin setting; no SLURM here",
    "hydra.launcher.mem_gb": "submitit (SLURM) plugin setting; no SLURM here",
    "hydra.launcher.partition": "submitit (SLURM) plugin setting; no SLURM here",
    "hydra.launcher.name": "submitit (SLURM) plugin setting; no SLURM here",
    "hydra.launcher.max_num_timeout": "submitit (SLURM) plugin setting; no SLURM here",
    "hydra.launcher.signal_delay_s": "submitit (SLURM) plugin setting; no SLURM here",
    "optim.g._partial_": "Hydra's instantiate flag: the optimiser gets its parameters later, "
    "so false cannot build one (torch.optim needs them)",
    "optim.d._partial_": "Hydra's instantiate flag: the optimiser gets its parameters later, "
    "so false cannot build one (torch.optim needs them)",
}


@dataclass
class Key:
    name: str
    files: list[str] = field(default_factory=list)
    defaults: list = field(default_factory=list)  # one value per defining file
    claims: list[str] = field(default_factory=list)  # test ids that cover it

    def rule_exemption(self) -> str | None:
        last = self.name.rsplit(".", 1)[-1]
        if last in ("_target_", "_partial_") and all("/" in f for f in self.files):
            return "the class the option builds: chosen with the group option itself"
        if last == "name" and any("/" in f for f in self.files):
            return "the option's own name, as selected by the group"
        if all(interpolated(v) for v in self.defaults):
            return f"an interpolation ({self.defaults[0]}): set through that key"
        return None


def interpolated(value) -> bool:
    """An interpolation, or a list made only of them (``img_shape: [${...}, ...]``)."""
    if isinstance(value, list):
        return bool(value) and all(interpolated(v) for v in value)
    return isinstance(value, str) and "${" in value


def leaves(node, prefix: str):
    """(dotted key, value) of every leaf of a plain container; interpolations stay as text.
    An empty mapping is no key; a group file's ``defaults`` list is Hydra's, not a key."""
    for name, value in node.items():
        if name == "defaults" or (prefix == "" and name == "hydra"):
            continue
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{name}.")
        elif not isinstance(value, dict):
            yield f"{prefix}{name}", value


def load(path: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def package_of(path: Path) -> str:
    """The package a group option's keys land in (the group path, or its @package line)."""
    head = path.read_text().splitlines()[:3]
    for line in head:
        if line.startswith("# @package"):
            package = line.split()[-1]
            return "" if package == "_global_" else package
    return ".".join(path.relative_to(CONF).parent.parts)


def collect_keys() -> dict[str, Key]:
    keys: dict[str, Key] = {}

    def add(name: str, file: Path, value) -> None:
        key = keys.setdefault(name, Key(name))
        key.files.append(str(file.relative_to(CONF)))
        key.defaults.append(value)

    for name, value in leaves(load(CONF / "config.yaml"), ""):
        add(name, CONF / "config.yaml", value)
    groups = [p for p in sorted(CONF.rglob("*.yaml")) if p.parent != CONF]
    for path in groups:
        if path.relative_to(CONF).parts[0] in OVERLAYS:
            continue
        package = package_of(path)
        for name, value in leaves(load(path), f"{package}." if package else ""):
            if name.startswith("hydra.launcher.") or not name.startswith("hydra"):
                add(name, path, value)
    for path in groups:  # a preset's key that no config defines is a key of its own
        if path.relative_to(CONF).parts[0] in OVERLAYS:
            for name, value in leaves(load(path), ""):
                if name not in keys:
                    add(name, path, value)
    for file, tool in TOOLS.items():
        for name, value in leaves(load(CONF / file), ""):
            add(f"{tool}:{name}", CONF / file, value)
    return keys


def normalised(value) -> str:
    return json.dumps(value, sort_keys=True)


def parse_override_value(text: str):
    """A Hydra override's value as the config would hold it (YAML rules)."""
    import yaml

    return yaml.safe_load(text) if text != "" else ""


@dataclass
class Claim:
    test: str  # file::function
    key: str
    value: object
    problem: str | None
    option: str | None = None  # "reg/js": compare with that option's default only


def is_slow(decorators) -> bool:
    return any("slow" in ast.unparse(d) and "mark" in ast.unparse(d) for d in decorators)


def asserts(function) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func).rsplit(".", 1)[-1]
            if name in ("raises", "warns") or name.startswith("assert"):
                return True
    return False


def claims_in(path: Path) -> list[Claim]:
    tree = ast.parse(path.read_text())
    module_slow = any(
        isinstance(n, ast.Assign)
        and any(ast.unparse(t) == "pytestmark" for t in n.targets)
        and "slow" in ast.unparse(n.value)
        for n in tree.body
    )
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in CLAIM_FUNCTIONS
        ):
            continue
        found.append(judge_claim(path, node, parents, module_slow))
    return found


def enclosing_test(node, parents):
    """The outermost test function (and its class) around ``node``; a decorator counts as
    inside the function it decorates."""
    test, cls = None, None
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            test = node
        if isinstance(node, ast.ClassDef):
            cls = node
    return test, cls


COMPUTED = "<computed>"  # a value built at run time: a path under tmp_path


def computed_or_literal(node):
    """A literal's value; ``str(x)`` or an f-string: COMPUTED (a path the test made)."""
    if isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Call) and ast.unparse(node.func) == "str"
    ):
        return COMPUTED
    return ast.literal_eval(node)


def judge_claim(path: Path, call: ast.Call, parents, module_slow: bool) -> Claim:
    test, cls = enclosing_test(call, parents)
    where = f"{path.name}::{test.name if test else '?'}:{call.lineno}"
    try:
        key = ast.literal_eval(call.args[0])
        value = computed_or_literal(call.args[1])
        options = [k.value for k in call.keywords if k.arg == "option"] + call.args[2:]
        option = ast.literal_eval(options[0]) if options else None
    except (ValueError, IndexError, TypeError, SyntaxError):
        return Claim(where, ast.unparse(call), None, "key and value must be literals")
    problem = None
    if test is None:
        problem = "not inside a test function"
    elif module_slow or is_slow(test.decorator_list) or (cls and is_slow(cls.decorator_list)):
        problem = "the test is marked slow"
    elif isinstance(parents[call], ast.Expr):
        problem = "the call's result is not used (the key is named, not set)"
    elif not asserts(test):
        problem = "the test has no assert"
    return Claim(where, key, value, problem, option)


def value_problem(claim: Claim, key: Key) -> str | None:
    """Why ``claim``'s value does not show the key at work, or None."""
    if claim.value == COMPUTED:
        if all(d is None or isinstance(d, str) for d in key.defaults):
            return None
        return "a computed value (a path) counts only for a key whose defaults are text or null"
    value = claim.value
    if isinstance(value, str) and not isinstance(key.defaults[0], str):
        value = parse_override_value(value)
    files = [
        (f, d)
        for f, d in zip(key.files, key.defaults, strict=True)
        if claim.option is None or f in ("config.yaml", f"{claim.option}.yaml")
    ]
    if not files:
        return f"{claim.option}.yaml does not define {claim.key}"
    if normalised(value) in {normalised(d) for _, d in files}:
        return f"{value!r} is a default of {claim.key} in {[f for f, _ in files]}"
    return None


def check(keys: dict[str, Key], claims: list[Claim]) -> list[str]:
    """Attach valid claims to keys; return the problems of the others."""
    problems = []
    for claim in claims:
        if claim.problem is None and claim.key not in keys:
            claim.problem = f"no config has the key {claim.key!r}"
        if claim.problem is None:
            claim.problem = value_problem(claim, keys[claim.key])
        if claim.problem:
            problems.append(
                f"NOT COUNTED {claim.test}: {claim.key} = {claim.value!r}: {claim.problem}"
            )
        else:
            keys[claim.key].claims.append(claim.test)
    return problems


def status(key: Key) -> tuple[str, str]:
    if key.claims:
        return "covered", ", ".join(sorted(set(key.claims)))
    reason = EXEMPT.get(key.name) or key.rule_exemption()
    if reason:
        return "exempt", reason
    return "UNCOVERED", ""


def advice(key: Key) -> str:
    defaults = sorted({normalised(d) for d in key.defaults})
    setting_key = key.name.split(":", 1)[-1]
    return (
        f"UNCOVERED {key.name} (default {', '.join(defaults)} in {', '.join(key.files)}): add a "
        f"fast test that sets it to another value and asserts its effect, building the value "
        f'with override("{key.name}", V) (compose_cfg(override(...)) gives '
        f'"{setting_key}=V") or setting("{key.name}", V) from tests/key_cover.py; or, if it '
        "cannot matter, add it to EXEMPT in scripts/key_coverage.py with the reason"
    )


def run(keys=None, test_files=None) -> tuple[dict[str, Key], list[str]]:
    keys = collect_keys() if keys is None else keys
    if test_files is None:  # this check's own tests call the helpers on purpose
        test_files = [
            p for p in sorted(TESTS.glob("test_*.py")) if p.name != "test_key_coverage.py"
        ]
    files = test_files
    claims = [c for f in files for c in claims_in(f)]
    return keys, check(keys, claims)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="every key with its status")
    args = parser.parse_args(argv)
    keys, problems = run()
    counts = {"covered": 0, "exempt": 0, "UNCOVERED": 0}
    for key in sorted(keys.values(), key=lambda k: k.name):
        state, detail = status(key)
        counts[state] += 1
        if args.list:
            print(f"{state:9} {key.name}: {detail}")
    failures = failures_of(keys, problems, known_gaps())
    for failure in failures:
        print(failure)
    print(
        f"{len(keys)} keys: {counts['covered']} covered, {counts['exempt']} exempt, "
        f"{counts['UNCOVERED']} uncovered ({len(known_gaps())} known gaps in "
        f"{GAPS.relative_to(ROOT)}); {len(problems)} claims not counted"
    )
    return 1 if failures else 0


def known_gaps() -> set[str]:
    lines = GAPS.read_text().splitlines() if GAPS.exists() else []
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def failures_of(keys: dict[str, Key], problems: list[str], gaps: set[str]) -> list[str]:
    """What fails the check: a new uncovered key, a stale gap, a claim not counted."""
    uncovered = {k.name for k in keys.values() if status(k)[0] == "UNCOVERED"}
    failures = [advice(keys[name]) for name in sorted(uncovered - gaps)]
    failures += [
        f"KNOWN GAP CLOSED {name}: it is {'gone' if name not in keys else status(keys[name])[0]}"
        f"; remove it from {GAPS.relative_to(ROOT)}"
        for name in sorted(gaps - uncovered)
    ]
    return failures + problems


if __name__ == "__main__":
    sys.exit(main())
