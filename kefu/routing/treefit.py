"""Fitting the routing tree with scikit-learn (training time only; the Rasa process never imports this).

`fit_tree` turns a labelled feature table into the JSON document kefu.routing.tree reads;
`cross_validate` picks the depth by stratified k-fold accuracy on the training table only
(never on the evaluation set); `draw_tree` renders the JSON tree as a PNG with matplotlib.
scikit-learn and matplotlib are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from kefu.routing.features import FEATURES
from kefu.routing.tree import RoutingTree, tree_document

DEPTHS = (3, 4, 5, 6, 7, 8, 10)
MIN_LEAVES = (1, 3, 5)
MIN_LEAF = 3


@dataclass(frozen=True)
class CvResult:
    depth: int
    folds: tuple[float, ...]
    min_leaf: int = MIN_LEAF

    @property
    def mean(self) -> float:
        return sum(self.folds) / len(self.folds)


def _classifier(depth: int, seed: int, min_leaf: int = MIN_LEAF) -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=depth, class_weight="balanced", min_samples_leaf=min_leaf,
                                  random_state=seed)


def fit_tree(rows: Sequence[Sequence[float]], labels: Sequence[str], depth: int, seed: int = 0,
             trained: Mapping[str, Any] | None = None, min_leaf: int = MIN_LEAF) -> dict[str, Any]:
    """Fit a depth-limited, class-balanced tree and return its JSON document."""
    if not rows or len(rows) != len(labels) or any(len(r) != len(FEATURES) for r in rows):
        raise ValueError("fit_tree needs one FEATURES-long row per label")
    model = _classifier(depth, seed, min_leaf).fit([list(r) for r in rows], list(labels))
    classes = [str(c) for c in model.classes_]
    t = model.tree_
    # which training rows end in / pass through each node: unweighted counts for support and accuracy
    paths = model.decision_path([list(r) for r in rows]).toarray()
    counts = [[0] * len(classes) for _ in range(t.node_count)]
    for row_nodes, label in zip(paths, labels, strict=False):
        for node in row_nodes.nonzero()[0]:
            counts[int(node)][classes.index(label)] += 1
    leaf = [int(t.children_left[i]) == -1 for i in range(t.node_count)]
    # the route a node predicts is sklearn's (class-weighted) majority; accuracy is unweighted
    predicted = [int(max(range(len(classes)), key=lambda c, i=i: t.value[i][0][c])) for i in range(t.node_count)]
    value = [[round(float(v), 6) for v in t.value[i][0]] for i in range(t.node_count)]
    nodes = {
        "feature": [-1 if leaf[i] else int(t.feature[i]) for i in range(t.node_count)],
        "threshold": [0.0 if leaf[i] else round(float(t.threshold[i]), 6) for i in range(t.node_count)],
        "left": [int(t.children_left[i]) for i in range(t.node_count)],
        "right": [int(t.children_right[i]) for i in range(t.node_count)],
        "value": value,
        "support": [sum(c) for c in counts],
        "accuracy": [round(counts[i][predicted[i]] / max(1, sum(counts[i])), 4) for i in range(t.node_count)],
    }
    info = {"depth": depth, "min_samples_leaf": min_leaf, "class_weight": "balanced", "rows": len(rows),
            "counts": {c: list(labels).count(c) for c in classes}, **dict(trained or {})}
    return tree_document(FEATURES, classes, nodes, info)


def cross_validate(rows: Sequence[Sequence[float]], labels: Sequence[str], depths: Sequence[int] = DEPTHS,
                   folds: int = 5, seed: int = 0, min_leaves: Sequence[int] = (MIN_LEAF,)) -> list[CvResult]:
    """Stratified k-fold accuracy per (depth, min leaf size), predicted by the JSON walk as at run time."""
    from sklearn.model_selection import StratifiedKFold

    from kefu.routing.tree import dumps, parse_tree

    results = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(rows, labels))
    for min_leaf in min_leaves:
        for depth in depths:
            scores = []
            for train, test in splits:
                doc = fit_tree([rows[i] for i in train], [labels[i] for i in train], depth, seed, min_leaf=min_leaf)
                tree = parse_tree(dumps(doc))
                right = sum(tree.predict(dict(zip(FEATURES, rows[i], strict=True))).route == labels[i] for i in test)
                scores.append(right / len(test))
            results.append(CvResult(depth, tuple(scores), min_leaf))
    return results


def draw_tree(tree: RoutingTree, path: Path) -> Path:
    """A PNG of the tree: each node its test, each leaf its route, support and accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depth_of: dict[int, int] = {0: 0}
    order: list[int] = []
    stack = [0]
    while stack:
        node = stack.pop()
        order.append(node)
        for child in (tree.right[node], tree.left[node]):
            if child >= 0:
                depth_of[child] = depth_of[node] + 1
                stack.append(child)
    leaves = [n for n in _in_order(tree, 0) if tree.feature[n] < 0]
    x: dict[int, float] = {n: float(i) for i, n in enumerate(leaves)}
    for node in sorted(order, key=lambda n: -depth_of[n]):
        if tree.feature[node] >= 0:
            x[node] = (x[tree.left[node]] + x[tree.right[node]]) / 2
    height = max(depth_of.values()) + 1
    fig, ax = plt.subplots(figsize=(max(8, len(leaves) * 1.6), max(4, height * 1.5)))
    for node in order:
        y = -depth_of[node]
        for child in (tree.left[node], tree.right[node]):
            if child >= 0:
                ax.plot([x[node], x[child]], [y, -depth_of[child]], color="#999999", linewidth=0.8, zorder=1)
        if tree.feature[node] >= 0:
            text = f"{tree.features[tree.feature[node]]}\n<= {tree.threshold[node]:.3g}\nn={tree.support[node]}"
            colour = "#e8eef7"
        else:
            counts = tree.value[node]
            route = tree.classes[max(range(len(counts)), key=counts.__getitem__)]
            text = f"{route}\nn={tree.support[node]}\n{tree.accuracy[node]:.0%} right"
            colour = "#e9f5e9"
        ax.text(x[node], y, text, ha="center", va="center", fontsize=7, zorder=2,
                bbox={"boxstyle": "round", "facecolor": colour, "edgecolor": "#666666"})
    ax.set_axis_off()
    ax.set_title("Kefu routing tree (left branch: test true)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _in_order(tree: RoutingTree, node: int) -> list[int]:
    if tree.feature[node] < 0:
        return [node]
    return _in_order(tree, tree.left[node]) + [node] + _in_order(tree, tree.right[node])
