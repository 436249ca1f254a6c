"""The learned routing tree as plain JSON, walked in pure Python (no scikit-learn, no pickle).

`kefu routing train` fits a scikit-learn DecisionTreeClassifier (kefu.routing.treefit) and
writes its node arrays here as JSON; the Rasa process only loads that JSON and walks it, so
nothing is ever unpickled and the Rasa server needs no scikit-learn at run time. A file that
is too large, not JSON, of another format version or inconsistent raises TreeError naming
the file; RoutingPolicy then keeps routing with the cascade.

Format (version 1): {"version", "features", "classes", "nodes": {"feature", "threshold",
"left", "right", "value", "support", "accuracy"}, "trained": {...}} — node 0 is the root, a
leaf has feature -1 and left/right -1; `value` is the training count per class at that node
(before class weighting), `accuracy` the share of the node's training turns of its majority class.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from kefu.errors import ConfigError
from kefu.routing.features import FEATURES, LABELS

FORMAT_VERSION = 1
MAX_TREE_BYTES = 2_000_000
MAX_NODES = 20_000
NODE_KEYS = ("feature", "threshold", "left", "right", "value", "support", "accuracy")


class TreeError(ConfigError):
    """A routing tree file that cannot be used (missing, corrupt, oversized, wrong version)."""


@dataclass(frozen=True)
class Step:
    """One test on the path from the root to a leaf."""

    feature: str
    threshold: float
    value: float
    went_left: bool  # value <= threshold

    def words(self) -> str:
        op = "<=" if self.went_left else ">"
        return f"{LABELS.get(self.feature, self.feature)} {self.value:g} {op} {self.threshold:.3g}"


@dataclass(frozen=True)
class Prediction:
    route: str  # a route, or "cascade" when a designer rejected the subtree
    path: tuple[Step, ...]
    support: int
    accuracy: float
    leaf: int  # the node the walk stopped at (a leaf, or a pinned node)
    pinned: bool = False

    def explain(self) -> str:
        """The path in words: "confidence 0.98 > 0.9, words 31 > 24.5 → specialist (leaf: 40 turns, 95% right)"."""
        tests = ", ".join(step.words() for step in self.path) or "no test"
        if self.pinned:
            return f"{tests} → {self.route} (subtree {self.leaf} pinned by a designer)"
        return f"{tests} → {self.route} (leaf of {self.support} training turns, {self.accuracy:.0%} right)"


@dataclass(frozen=True)
class RoutingTree:
    features: tuple[str, ...]
    classes: tuple[str, ...]
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[tuple[float, ...], ...]
    support: tuple[int, ...]
    accuracy: tuple[float, ...]
    trained: Mapping[str, Any]
    digest: str

    def predict(self, row: Mapping[str, float], pins: Optional[Mapping[int, str]] = None) -> Prediction:
        """Walk from the root to a leaf with the feature row (kefu.routing.features.build_row).

        A pinned node (`tree.pins` in routing.yml) ends the walk with the designer's route.
        """
        node, path = 0, []
        for _ in range(len(self.feature)):  # bounded: a validated tree has no cycles anyway
            if pins and node in pins:
                return Prediction(pins[node], tuple(path), self.support[node], self.accuracy[node], node, True)
            index = self.feature[node]
            if index < 0:
                break
            name = self.features[index]
            value = float(row[name])
            went_left = value <= self.threshold[node]
            path.append(Step(name, self.threshold[node], value, went_left))
            node = self.left[node] if went_left else self.right[node]
        counts = self.value[node]
        route = self.classes[max(range(len(counts)), key=counts.__getitem__)]
        return Prediction(route, tuple(path), self.support[node], self.accuracy[node], node)

    def to_json(self) -> dict[str, Any]:
        return tree_document(self.features, self.classes, {
            "feature": list(self.feature), "threshold": list(self.threshold), "left": list(self.left),
            "right": list(self.right), "value": [list(v) for v in self.value], "support": list(self.support),
            "accuracy": list(self.accuracy)}, self.trained)


def tree_document(features: Sequence[str], classes: Sequence[str], nodes: Mapping[str, list],
                  trained: Mapping[str, Any]) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "features": list(features), "classes": list(classes),
            "nodes": dict(nodes), "trained": dict(trained)}


def dumps(document: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a tree document (what the approval digest is taken over)."""
    return (json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fail(where: str, why: str) -> TreeError:
    return TreeError(f"routing tree {where}: {why}")


def _check_nodes(nodes: Any, n_features: int, n_classes: int, where: str) -> int:
    if not isinstance(nodes, Mapping) or any(key not in nodes for key in NODE_KEYS):
        raise _fail(where, f"nodes must have {', '.join(NODE_KEYS)}")
    count = len(nodes["feature"]) if isinstance(nodes["feature"], list) else -1
    if not 1 <= count <= MAX_NODES or any(not isinstance(nodes[k], list) or len(nodes[k]) != count
                                          for k in NODE_KEYS):
        raise _fail(where, f"node arrays must be lists of one length in [1, {MAX_NODES}]")
    for i in range(count):
        feature, left, right = nodes["feature"][i], nodes["left"][i], nodes["right"][i]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (feature, left, right)):
            raise _fail(where, f"node {i}: feature/left/right must be integers")
        value, threshold = nodes["value"][i], nodes["threshold"][i]
        if not isinstance(value, list) or len(value) != n_classes or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                for v in value) or sum(value) <= 0:  # noqa: UP038
            raise _fail(where, f"node {i}: value must be {n_classes} non-negative counts")
        if feature == -1:
            if left != -1 or right != -1:
                raise _fail(where, f"leaf {i} has children")
            continue
        if not 0 <= feature < n_features or not (i < left < count and i < right < count):
            raise _fail(where, f"node {i}: feature or children out of range")
        if not isinstance(threshold, (int, float)) or not math.isfinite(threshold):  # noqa: UP038
            raise _fail(where, f"node {i}: threshold must be a finite number")
    return count


def parse_tree(data: bytes, where: str = "(bytes)") -> RoutingTree:
    """Validate a tree document's bytes and build the tree; TreeError says what is wrong."""
    if len(data) > MAX_TREE_BYTES:
        raise _fail(where, f"larger than {MAX_TREE_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(where, f"not JSON: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise _fail(where, "must be a JSON object")
    if doc.get("version") != FORMAT_VERSION:
        raise _fail(where, f"format version {doc.get('version')!r}, this Kefu reads {FORMAT_VERSION}: retrain")
    features, classes = doc.get("features"), doc.get("classes")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features) or set(features) - set(FEATURES):
        raise _fail(where, "features must name kefu.routing.features.FEATURES: retrain")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise _fail(where, "classes must be a non-empty list of route names")
    nodes = doc.get("nodes")
    _check_nodes(nodes, len(features), len(classes), where)
    trained = doc.get("trained") if isinstance(doc.get("trained"), Mapping) else {}
    return RoutingTree(
        tuple(features), tuple(classes), tuple(nodes["feature"]), tuple(float(t) for t in nodes["threshold"]),
        tuple(nodes["left"]), tuple(nodes["right"]), tuple(tuple(float(x) for x in v) for v in nodes["value"]),
        tuple(int(s) for s in nodes["support"]), tuple(float(a) for a in nodes["accuracy"]), trained,
        digest_of(data),
    )


_cache: dict[Path, tuple[float, int, RoutingTree]] = {}


def load_tree(path: Path) -> RoutingTree:
    """Read and validate a tree file, cached until its modification time or size changes."""
    path = Path(path)
    try:
        stat = path.stat()
        cached = _cache.get(path)
        if cached and cached[:2] == (stat.st_mtime, stat.st_size):
            return cached[2]
        if stat.st_size > MAX_TREE_BYTES:
            raise _fail(str(path), f"larger than {MAX_TREE_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise _fail(str(path), f"cannot be read: {exc.strerror}") from exc
    tree = parse_tree(data, str(path))
    _cache[path] = (stat.st_mtime, stat.st_size, tree)
    return tree


def rules_text(tree: RoutingTree, node: int = 0, depth: int = 0, pins: Optional[Mapping[int, str]] = None) -> str:
    """Readable rules like sklearn's export_text, each leaf's support and accuracy; [node N] names the subtree
    a branch leads to (what `kefu routing pin` takes)."""
    pad = "|   " * depth
    if pins and node in pins:
        return f"{pad}|--- [node {node}] PINNED → {pins[node]}  (support {tree.support[node]})\n"
    index = tree.feature[node]
    if index < 0:
        counts = tree.value[node]
        route = tree.classes[max(range(len(counts)), key=counts.__getitem__)]
        return f"{pad}|--- route: {route}  (support {tree.support[node]}, accuracy {tree.accuracy[node]:.0%})\n"
    name, threshold = tree.features[index], tree.threshold[node]
    left, right = tree.left[node], tree.right[node]
    return (f"{pad}|--- {name} <= {threshold:.3f}  [node {left}]\n" + rules_text(tree, left, depth + 1, pins)
            + f"{pad}|--- {name} >  {threshold:.3f}  [node {right}]\n" + rules_text(tree, right, depth + 1, pins))


def optional_tree(path: Optional[Path]) -> Optional[RoutingTree]:
    """load_tree for a configured path, None when none is configured."""
    return None if path is None else load_tree(path)
