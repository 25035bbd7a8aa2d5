"""The estimator registry (skdistill.discovery) and the fast test instances built from it."""
import importlib
import inspect
import pkgutil

import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from skdistill import students, teachers
from skdistill._testing import FAST_PARAMS, PER_CLASS, fast_instance, fast_instances
from skdistill.discovery import KINDS, all_estimators


def test_an_estimator_named_in_its_subpackage_is_exported_by_kind(monkeypatch):
    class NewTeacher(ClassifierMixin, BaseEstimator):
        """A teacher that a later change adds."""

    monkeypatch.setattr(teachers, "NewTeacher", NewTeacher, raising=False)
    monkeypatch.setattr(teachers, "__all__", [*teachers.__all__, "NewTeacher"])
    assert ("NewTeacher", NewTeacher) in all_estimators("teacher")
    assert ("NewTeacher", NewTeacher) in all_estimators()
    assert ("NewTeacher", NewTeacher) not in all_estimators(["student", "distiller"])
    assert [name for name, _ in all_estimators(["student"])] == [
        name for name in sorted(students.__all__) if not name.startswith("Base")]


def test_all_estimators_filters_by_kind():
    kinds = {kind: all_estimators(kind) for kind in KINDS}
    for kind, estimators in kinds.items():
        assert estimators and all(name.endswith(kind.title()) for name, _ in estimators)
    assert sorted(kinds["student"] + kinds["teacher"]) == all_estimators(["teacher", "student"])
    # one kind each: the kinds' lists, together, are the whole list without repeats
    assert all_estimators(list(KINDS)) == all_estimators() == sorted(
        sum(kinds.values(), []))


@pytest.mark.parametrize("bad", ["teachers", ["teacher", "regressor"], [], 3])
def test_all_estimators_refuses_an_unknown_kind(bad):
    with pytest.raises(ValueError, match=r"^all_estimators: parameter type_filter=.* is "
                                         r"invalid; expected None, one of \['distiller', "
                                         r"'student', 'teacher'\]"):
        all_estimators(bad)


def test_every_estimator_class_of_the_subpackages_is_exported():
    # a class written in a module of teachers/, students/ or distillers/ but not named in its
    # subpackage's __all__ would be left out of every test that covers all estimators
    listed = {cls for _, cls in all_estimators()}
    unlisted = []
    for package in KINDS.values():
        path = importlib.import_module(package).__path__
        for info in pkgutil.walk_packages(path, prefix=f"{package}."):
            module = importlib.import_module(info.name)
            for name, obj in inspect.getmembers(module, inspect.isclass):
                if (obj.__module__ == module.__name__ and issubclass(obj, BaseEstimator)
                        and not name.startswith(("_", "Base")) and obj not in listed):
                    unlisted.append(f"{module.__name__}.{name}")
    assert not unlisted, f"add {unlisted} to the __all__ of their subpackage"


# -- fast test instances ----------------------------------------------------------------------

def _tree(estimator, path=""):
    yield path, estimator
    for name, value in estimator.get_params(deep=False).items():
        if isinstance(value, BaseEstimator):
            yield from _tree(value, f"{path}{name}__")


@pytest.mark.parametrize("estimator", fast_instances(), ids=lambda e: type(e).__name__)
def test_every_estimator_has_a_small_instance(estimator):
    # every sub-estimator set, and every parameter named in FAST_PARAMS small, in the
    # estimator and in each sub-estimator, but for what PER_CLASS fixes
    tree = list(_tree(estimator))
    fixed = {path + name for path, sub in tree for name in PER_CLASS.get(type(sub).__name__, {})}
    for path, sub in tree:
        params = sub.get_params(deep=False)
        for name in ("teacher", "student", "base_estimator", "estimator"):
            assert params.get(name, "") is not None, f"{path}{name} is None"
        for name, value in FAST_PARAMS.items():
            if name in params and path + name not in fixed:
                assert params[name] == value, f"{type(estimator).__name__}: {path}{name}"


def test_fast_instance_sets_values_by_name_in_every_sub_estimator():
    from skdistill import EnsembleDistiller, GPEDDistiller, KnowledgeDistiller, MLPStudent

    model = fast_instance(EnsembleDistiller, max_epochs=3, random_state=7)
    assert model.student.max_epochs == model.teacher.base_estimator.max_epochs == 3
    assert model.random_state == model.student.random_state == 7
    assert model.teacher.n_members == model.student.n_members == FAST_PARAMS["n_members"]
    # the class's own needs win over values by name: GPED's chain decides the student's steps
    gped = fast_instance(GPEDDistiller, max_epochs=3, thinning=4)
    assert gped.student.max_epochs == MLPStudent().max_epochs and gped.thinning is None
    assert gped.teacher.thinning == 4 and type(gped.teacher).__name__ == "SGLDTeacher"
    # a sub-estimator given is used as it is (a copy)
    given = MLPStudent(hidden_layer_sizes=(5,))
    kd = fast_instance(KnowledgeDistiller, student=given, max_epochs=3)
    assert kd.student is not given and kd.student.get_params() == given.get_params()
    assert kd.teacher.n_estimators == FAST_PARAMS["n_estimators"]
