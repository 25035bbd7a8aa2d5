"""Cost scorers, the Pareto frontier and its plot (skdistill.model_selection)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skdistill import (CNNStudent, DeepEnsembleTeacher, GPEDDistiller,  # noqa: E402
                       LaplaceTeacher, MLPStudent, VITeacher)
from skdistill.complexity import count_flops, count_parameters  # noqa: E402
from skdistill.model_selection import (cost_scorers, make_cost_scorer, pareto_front,  # noqa: E402
                                       plot_pareto)


def _brute_force(cost, score):
    keep = []
    for i in range(len(cost)):
        if not (np.isfinite(cost[i]) and np.isfinite(score[i])):
            continue
        dominated = any(
            np.isfinite(cost[j]) and np.isfinite(score[j]) and cost[j] <= cost[i]
            and score[j] >= score[i] and (cost[j] < cost[i] or score[j] > score[i])
            for j in range(len(cost)))
        if not dominated:
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", range(20))
def test_pareto_front_agrees_with_a_brute_force_dominance_check(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    cost = rng.integers(0, 8, n).astype(float)  # few values: ties in cost and in score
    score = rng.integers(0, 8, n).astype(float)
    cost[rng.random(n) < 0.1] = np.nan  # failed fits
    frame = pd.DataFrame({"flops": cost, "acc": score}, index=rng.permutation(n) + 100)
    front = pareto_front(frame, cost="flops", score="acc")
    expected = frame.index[_brute_force(cost, score)]
    assert sorted(front.index) == sorted(expected)
    assert list(front.columns) == ["flops", "acc"]
    assert front["flops"].is_monotonic_increasing


def test_neg_cost_columns_are_negated_and_score_columns_are_not():
    results = {"mean_test_neg_flops": [-10.0, -20.0, -5.0],
               "mean_test_neg_log_loss": [-0.3, -0.2, -0.5], "param_k": [1, 2, 3]}
    front = pareto_front(results, cost="neg_flops", score="neg_log_loss")
    assert list(front.index) == [2, 0, 1]  # 5 FLOPs / .5, 10 / .3, 20 / .2: all on the front
    front = pareto_front(results, cost="mean_test_neg_flops", score="mean_test_neg_log_loss")
    assert list(front["param_k"]) == [3, 1, 2]


def test_pareto_front_errors_name_the_function_and_the_argument():
    with pytest.raises(ValueError, match=r"pareto_front: parameter cost='speed' is invalid; "
                                         r"expected a column"):
        pareto_front(pd.DataFrame({"flops": [1], "acc": [1]}), cost="speed", score="acc")
    with pytest.raises(TypeError, match="pareto_front: parameter results="):
        pareto_front([1, 2], cost="flops", score="acc")
    with pytest.raises(ValueError, match="make_cost_scorer: parameter cost='time'"):
        make_cost_scorer("time")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


def test_cost_scorers_in_a_multi_metric_grid_search(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), MLPStudent(max_epochs=3, random_state=0))
    search = GridSearchCV(
        pipe, {"mlpstudent__hidden_layer_sizes": [(8,), (32,), (64,)]}, cv=2,
        scoring={"neg_log_loss": "neg_log_loss", **cost_scorers()}, refit="neg_log_loss")
    search.fit(X[:600], y[:600])
    res = search.cv_results_
    # FLOPs per row of the network behind the pipeline: 2 * (64 * h + h * 10)
    np.testing.assert_array_equal(res["mean_test_neg_flops"], [-2 * 74 * h for h in (8, 32, 64)])
    np.testing.assert_array_equal(res["mean_test_neg_parameters"],
                                  [-(65 * h + (h + 1) * 10) for h in (8, 32, 64)])
    assert (res["mean_test_neg_latency"] < 0).all()
    front = pareto_front(res, cost="neg_flops", score="neg_log_loss")
    assert sorted(front.index) == _brute_force(-res["mean_test_neg_flops"],
                                               res["mean_test_neg_log_loss"])
    best = search.best_estimator_[-1]
    assert -make_cost_scorer("flops")(search.best_estimator_, X, y) == count_flops(best, (1, 64))


def test_cost_of_a_distiller_is_its_students_network(digits):
    X, y = digits
    X = X / 16
    teacher = DeepEnsembleTeacher(MLPStudent((8,), max_epochs=2), n_members=2, random_state=0)
    model = GPEDDistiller(teacher, CNNStudent(max_epochs=1, width_multiplier=0.5),
                          target=["predictive", "entropy"], random_state=0).fit(X[:200], y[:200])
    student = model.student_
    # the trunk of a GPED CNN student takes images: the shape comes from input_shape_
    assert -make_cost_scorer("flops")(model, X, y) == count_flops(student, (1, 1, 8, 8))
    assert -make_cost_scorer("parameters")(model, X, y) == count_parameters(student)
    assert count_parameters(student) < count_parameters(model.module_)  # + entropy head


def _three_classes():
    X, y = make_classification(60, n_features=6, n_informative=4, n_classes=3, random_state=0)
    return X.astype(np.float32), y


def test_flops_cost_of_a_posterior_teacher_counts_every_sample_per_row():
    X, y = _three_classes()
    forward = 2 * (6 * 8 + 8 * 3)  # one pass of the 6-8-3 network at one row
    flops = make_cost_scorer("flops")
    for n_samples in (1, 10):
        vi = make_pipeline(StandardScaler(), VITeacher(
            (8,), max_epochs=1, n_samples=n_samples, random_state=0)).fit(X, y)
        assert flops(vi, X, y) == -n_samples * forward
        laplace = LaplaceTeacher(MLPStudent((8,), max_epochs=1, random_state=0),
                                 n_samples=n_samples, random_state=0).fit(X, y)
        # per row the trunk and the MAP head once and a head product per draw; the draws
        # themselves (triangular solves) are made once per call, not per row
        assert flops(laplace, X, y) == -(forward + n_samples * 2 * 8 * 3)


def test_latency_cost_times_the_real_predict_proba(monkeypatch):
    X, y = _three_classes()
    teacher = VITeacher((8,), max_epochs=1, n_samples=5, random_state=0).fit(X, y)
    draws, weights = [], VITeacher._weights
    monkeypatch.setattr(VITeacher, "_weights",
                        lambda self, s: draws.append(s) or weights(self, s))
    assert make_cost_scorer("latency", n_repeats=2)(teacher, X, y) < 0
    assert draws == [*range(5)] * 3  # a warm-up and two timed calls, each with every draw


def test_parameter_cost_of_a_forest_is_its_node_count(digits):
    X, y = digits
    forest = RandomForestClassifier(5, max_depth=3, random_state=0).fit(X, y)
    assert make_cost_scorer("parameters")(forest, X, y) == -count_parameters(forest)


def test_plot_pareto_draws_the_frontier_of_each_method():
    runs = pd.DataFrame({"flops": [10, 20, 30, 25, 12], "nll": [.5, .4, .3, .45, .6],
                         "method": ["a"] * 5})
    ax = plot_pareto(runs.assign(score=-runs["nll"]), "flops", "score", label="width")
    ax = plot_pareto(runs.assign(score=-runs["nll"] + 0.1), "flops", "score", ax=ax,
                     label="pruning", annotate="flops")
    assert len(ax.lines) == 2 and len(ax.collections) == 2
    front = ax.lines[0].get_xdata()
    assert list(front) == [10, 20, 30]  # 25 and 12 are dominated
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["width", "pruning"]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "flops"
    # two searches concatenated: a repeated index still draws each frontier point once
    both = pd.concat([runs, runs.assign(flops=runs["flops"] + 5)]).assign(score=-runs["nll"])
    ax = plot_pareto(both, "flops", "score")
    assert list(ax.lines[0].get_xdata()) == list(pareto_front(both, "flops", "score")["flops"])
    with pytest.raises(ValueError, match="pareto_front: parameter cost='method' is invalid; "
                                         "expected a numeric column"):
        pareto_front(runs, cost="method", score="nll")


def test_plot_pareto_cost_labels_do_not_overlap():
    # the FLOPs of examples/prune_student.py: about one decade, where matplotlib labels
    # minor ticks too
    import matplotlib.pyplot as plt
    runs = pd.DataFrame({"flops": [1312, 2880, 6784, 17664], "score": [-.9, -.4, -.3, -.2]})
    fig, ax = plt.subplots()
    plot_pareto(runs, "flops", "score", ax=ax)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.get_xticklabels(minor=False) + ax.get_xticklabels(minor=True)
              if t.get_visible() and t.get_text() and ax.get_xlim()[0] <= t.get_position()[0]
              <= ax.get_xlim()[1]]
    boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
    plt.close(fig)
    assert len(boxes) >= 3
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), [t.get_text() for t in labels]


def _cv_results():
    return {"mean_test_neg_flops": [-100.0, -400.0, -250.0, np.nan, -50.0],
            "mean_test_neg_latency": [-2e-5, -6e-5, -4e-5, np.nan, -1e-5],
            "mean_test_neg_log_loss": [-0.5, -0.2, -0.6, np.nan, -0.9],
            "mean_test_accuracy": [0.8, 0.9, 0.7, np.nan, 0.6],
            "param_width": [1, 4, 2, 8, 0.5]}


def test_pareto_display_draws_losses_and_costs_in_their_natural_sign():
    from skdistill.model_selection import ParetoDisplay

    results = _cv_results()
    display = ParetoDisplay.from_cv_results(results, "neg_flops", "neg_log_loss",
                                            annotate="param_width", name="width")
    front = pareto_front(results, "neg_flops", "neg_log_loss")
    assert display.ax_.get_ylabel() == "log loss (lower is better)"
    assert display.ax_.get_xlabel() == "FLOPs per row"
    x, y = display.line_.get_data()
    np.testing.assert_array_equal(x, -front["mean_test_neg_flops"])
    np.testing.assert_array_equal(y, -front["mean_test_neg_log_loss"])
    assert (y > 0).all() and (display.score[np.isfinite(display.score)] > 0).all()
    assert display.front_text == [str(w) for w in front["param_width"]]
    assert [a.get_text() for a in display.annotations_] == display.front_text
    assert display.scatter_.get_offsets().shape == (5, 2)
    assert display.figure_ is display.ax_.figure
    assert [t.get_text() for t in display.ax_.get_legend().get_texts()] == ["width"]
    # latency in milliseconds per row, a score that is not negated says higher is better
    display = ParetoDisplay.from_cv_results(pd.DataFrame(results), "mean_test_neg_latency",
                                            "accuracy", logx=False)
    assert display.ax_.get_xlabel() == "latency per row (ms)"
    assert display.ax_.get_ylabel() == "accuracy (higher is better)"
    np.testing.assert_allclose(display.line_.get_xdata(), [0.01, 0.02, 0.06])
    # the wrapper draws the same and still returns the Axes
    ax = plot_pareto(results, "neg_flops", "neg_log_loss")
    assert isinstance(ax, matplotlib.axes.Axes) and ax.get_ylabel() == \
        "log loss (lower is better)"
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), y)


def test_pareto_display_errors_name_the_function_and_the_argument():
    from skdistill.model_selection import ParetoDisplay

    results = _cv_results()
    with pytest.raises(ValueError, match=r"ParetoDisplay.from_cv_results: parameter "
                                         r"cost='param_width' is invalid; expected positive "
                                         r"costs .* row 4 costs 0;"):
        ParetoDisplay.from_cv_results({**results, "param_width": [1, 2, 3, 4, 0]},
                                      "param_width", "accuracy")
    with pytest.raises(ValueError, match=r"ParetoDisplay.from_cv_results: parameter "
                                         r"annotate='width' is invalid"):
        ParetoDisplay.from_cv_results(results, "neg_flops", "accuracy", annotate="width")
    with pytest.raises(ValueError, match=r"ParetoDisplay.from_cv_results: parameter "
                                         r"score='loss' is invalid; expected a column"):
        ParetoDisplay.from_cv_results(results, "neg_flops", "loss")
    display = ParetoDisplay([1.0, 0.0], [0.5, 0.4], [1, 0])
    with pytest.raises(ValueError, match=r"ParetoDisplay.plot: parameter cost=\[1.0, 0.0\] "
                                         r"is invalid; expected positive costs .* row 1 costs 0"):
        display.plot()
    with pytest.raises(TypeError, match=r"ParetoDisplay.plot: parameter ax='left'"):
        display.plot("left", logx=False)
    assert display.plot(logx=False).line_.get_xdata().tolist() == [0.0, 1.0]


def test_plot_pareto_draws_neg_log_loss_as_the_log_loss():
    ax = plot_pareto(_cv_results(), "neg_flops", "neg_log_loss")
    assert ax.get_ylabel() == "log loss (lower is better)"
    assert (ax.lines[0].get_ydata() > 0).all()
