"""Search a distilled student's width, prune it with group lasso, and plot both frontiers
======================================================================================

Two ways to a cheaper student (Vadera et al. 2020, §3.3): an exhaustive search over width
multipliers, and one wide student trained with a group-lasso penalty whose dead units are then
removed (the network is rebuilt smaller and fine-tuned). Both are ordinary ``GridSearchCV``
runs: the search scores each student on validation NLL *and* on its cost (forward-pass FLOPs,
parameters) with :func:`skdistill.model_selection.cost_scorers`, and
:func:`~skdistill.model_selection.pareto_front` keeps the settings no other beats on both.
:class:`~skdistill.model_selection.ParetoDisplay` draws them from ``cv_results_``: the log
loss itself (not scikit-learn's ``neg_log_loss``) against the FLOPs, the width multipliers
written next to their points.

Run: ``python examples/prune_student.py`` (about half a minute; writes ``pruning_frontier.png``)
"""
import matplotlib

matplotlib.use("Agg")
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402

from skdistill import KnowledgeDistiller, MLPStudent  # noqa: E402
from skdistill.complexity import count_flops  # noqa: E402
from skdistill.model_selection import ParetoDisplay, cost_scorers, pareto_front  # noqa: E402

X, y = load_digits(return_X_y=True)
X = X / 16.0
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

from sklearn.utils import resample  # noqa: E402

QUICK = os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1"
if QUICK:
    X, y = resample(X, y, n_samples=min(600, len(X)), replace=False, stratify=y,
                    random_state=0)
# sphinx_gallery_end_ignore
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# A forest teacher distilled into a two-layer student; only the student's settings are searched.
distiller = KnowledgeDistiller(
    RandomForestClassifier(n_estimators=100, random_state=0),
    MLPStudent(hidden_layer_sizes=(64, 64), max_epochs=40, lr=3e-3, random_state=0),
    temperature=2.0)
# sphinx_gallery_start_ignore
if QUICK:
    distiller.set_params(teacher__n_estimators=10, student__max_epochs=10)
# sphinx_gallery_end_ignore
scoring = {"neg_log_loss": "neg_log_loss", **cost_scorers(["flops", "parameters"])}
grids = {
    "width search": {"student__width_multiplier": [0.125, 0.25, 0.5, 1.0]},
    # one wide student; the penalty decides how much of it survives
    "group-lasso pruning": {"student__group_lasso": [1e-3, 3e-3, 1e-2, 2e-2]},
}
ax = None
for (name, grid), color in zip(grids.items(), ["tab:blue", "tab:red"]):
    search = GridSearchCV(distiller, grid, scoring=scoring, refit="neg_log_loss", cv=3)
    search.fit(X_train, y_train)
    front = pareto_front(search.cv_results_, cost="neg_flops", score="neg_log_loss")
    print(f"{name}: {len(front)} of {len(search.cv_results_['params'])} settings on the "
          "NLL/FLOPs frontier")
    for i in front.index:
        print(f"  {search.cv_results_['params'][i]}  FLOPs {-front.loc[i, 'mean_test_neg_flops']:.0f}"
              f"  CV NLL {-front.loc[i, 'mean_test_neg_log_loss']:.3f}")
    # the pruned students' costs lie close together: only the widths are written out
    annotate = "param_student__width_multiplier" if name == "width search" else None
    display = ParetoDisplay.from_cv_results(search.cv_results_, "neg_flops", "neg_log_loss",
                                            annotate=annotate, name=name, ax=ax, color=color)
    ax = display.ax_
    best = search.best_estimator_
    student = best.student_
    print(f"  refit on the lowest NLL: hidden layers {student.hidden_layer_sizes_} "
          f"({student.n_pruned_units_} units pruned), {count_flops(best, (1, 64))} FLOPs, "
          f"test accuracy {best.score(X_test, y_test):.3f}")

ax.set_ylabel("CV log loss (lower is better)")
ax.set_xlabel("FLOPs per image")
ax.figure.tight_layout()
ax.figure.savefig("pruning_frontier.png", dpi=100)
print("saved pruning_frontier.png")
