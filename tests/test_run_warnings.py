"""Warnings at the end of a run about the classifier it registers (tasks.promotion): references only."""
def test_accuracy_no_better_than_the_most_frequent_label_is_flagged(tmp_path):
    """A run that registers a classifier worse than a constant answer says so (a reference; nothing is decided)."""
    import json
    from types import SimpleNamespace

    import mlflow

    from flows.cli import summary_line
    from tasks.promotion import below_majority

    def split(name, labels):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"text_a": f"t{i}", "label": lab}) + "\n" for i, lab in enumerate(labels)))
        return SimpleNamespace(path=str(path))

    data = {"dev": split("dev", ["a", "b"] * 4), "test": split("test", ["a"] * 6 + ["b"] * 2)}  # test: 'a' scores 0.75
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run() as run:
        lines = below_majority(data, {"the ensemble": {"dev_accuracy": 0.75, "test_accuracy": 0.80},
                                      "the classifier": {"dev_accuracy": 0.50, "test_accuracy": 0.70}})
    assert lines == ["the classifier's dev accuracy 0.500 is no better than always answering 'a' (0.500)",
                     "the classifier's test accuracy 0.700 is no better than always answering 'a' (0.750)"]
    assert mlflow.get_run(run.info.run_id).data.metrics == {"majority_dev_accuracy": 0.5, "majority_test_accuracy": 0.75}
    cfg = SimpleNamespace(tracking_uri=lambda: "sqlite:///x.db", work_path=tmp_path)
    first, *warned = summary_line("run", cfg, {"quality_warnings": lines}).split("\n")
    assert first.startswith("run done: ") and "WARNING" not in first  # the result line stays short
    assert warned == [f"  WARNING {line}" for line in lines]


def test_a_student_far_below_its_teacher_on_dev_is_flagged_with_the_measured_remedy():
    from types import SimpleNamespace

    from tasks.promotion import student_gap

    cfg = SimpleNamespace(distill=SimpleNamespace(with_train=False), labels=[f"c{i}" for i in range(50)])
    assert student_gap(cfg, {"dev_accuracy": 0.51}, {"dev_accuracy": 0.45}) == []  # within 0.10
    (line,) = student_gap(cfg, {"dev_accuracy": 0.515}, {"dev_accuracy": 0.164})
    assert line.startswith("the classifier trails the ensemble by 0.351 on dev") and "distill.with_train: true" in line
    binary = SimpleNamespace(distill=SimpleNamespace(with_train=False), labels=["pos", "neg"])
    (line,) = student_gap(binary, {"dev_accuracy": 0.9}, {"dev_accuracy": 0.7})
    assert "with_train" not in line  # two labels: the gold examples did not help on dev, so not suggested
    cfg.distill.with_train = True  # already on: nothing to suggest
    assert student_gap(cfg, {"dev_accuracy": 0.515}, {"dev_accuracy": 0.164}) == [
        "the classifier trails the ensemble by 0.351 on dev"]
    assert student_gap(cfg, {"test_accuracy": 0.9}, {"test_accuracy": 0.1}) == []  # no dev set: nothing to say


def test_a_classifier_below_calibrated_zero_shot_scoring_is_flagged_and_tagged(tmp_path):
    """mpqa (a new-user trial): dev 0.688 against zero-shot 0.781, registered with nothing said about it. On dev the
    line says zero-shot's score is optimistic (the prompts were chosen there; mpqa's test went the other way)."""
    import mlflow

    from tasks.promotion import below_zero_shot

    reference = {"metrics": {"dev_accuracy": 0.781, "test_accuracy": 0.695}, "split": "dev", "ensemble_beats": False}
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run() as run:
            lines = below_zero_shot(reference, {"dev_accuracy": 0.6875, "test_accuracy": 0.769})
            assert mlflow.get_run(run.info.run_id).data.tags["classifier_below_zero_shot"] == "dev"
            assert below_zero_shot(reference, {"dev_accuracy": 0.781}) == []  # level is not below
            assert below_zero_shot({}, {"dev_accuracy": 0.1}) == []  # no reference (none asked for, or no dev/test)
            (test_line,) = below_zero_shot({"metrics": {"test_accuracy": 0.9}, "split": "test"}, {"test_accuracy": 0.8})
        tags = mlflow.get_run(run.info.run_id).data.tags
    finally:
        mlflow.set_tracking_uri(before)
    assert lines == ["the classifier's dev accuracy 0.688 is below calibrated zero-shot scoring's 0.781 (the untrained "
                     "backbone with these prompts, chosen on this dev set: its score there is optimistic)"]
    assert tags["classifier_below_zero_shot"] == "test"  # the split of the last line said
    assert test_line == "the classifier's test accuracy 0.800 is below calibrated zero-shot scoring's 0.900"


def test_the_flows_leave_library_prints_alone():
    """With ``log_prints`` a flow logs every ``print`` that means stdout, and Prefect takes ``file=None`` for stdout
    even while a library has redirected it: dill (datasets' fingerprinting of an Arrow table) disassembles a
    function with stdout captured, and that bytecode became ten log lines of a run (MRPC's `.json` pool,
    2026-12-07). No code of the pipeline prints inside a flow (it logs), so none of its flows turns prints into
    logs."""
    from flows.pet_flow import pet_flow, relabel_flow
    from flows.search_flows import search_flow

    for flow in (pet_flow, relabel_flow, search_flow):
        assert not flow.log_prints, flow.name


def test_a_run_without_dev_or_test_says_it_measured_nothing(tmp_path):
    from types import SimpleNamespace

    from flows.cli import summary_line

    cfg = SimpleNamespace(tracking_uri=lambda: "sqlite:///x.db", work_path=tmp_path)
    registered = {"registered": {"name": "spam-classifier", "version": 2, "alias": "champion"}}
    line = summary_line("run", cfg, registered)
    assert line.startswith("run done: no accuracy measured (no dev or test set;") and "v2 as 'champion'" in line
    scored = summary_line("run", cfg, {**registered, "classifier_metrics": {"test_accuracy": 0.9}})
    assert "no accuracy measured" not in scored and "classifier accuracy test 0.900" in scored


def test_prompts_chosen_at_chance_are_flagged():
    # MRPC: four templates at 0.469-0.531 on a balanced dev set; chosen, but nearly at random
    from flows.auto_stage import prompts_at_chance

    best = {"template": "{text_a} {text_b} In summary, {mask}", "accuracy": 0.5}
    line = prompts_at_chance(best, (0.5, "a"))
    assert line.startswith("no candidate prompt did better than chance untrained on dev: the best, "
                           "'{text_a} {text_b} In summary, {mask}', scored 0.500, always answering 'a' 0.500;")
    assert prompts_at_chance(dict(best, accuracy=0.531), (0.5, "a")) is None
    assert prompts_at_chance(dict(best, accuracy=0.6), (0.7, "a")) is not None  # a dev set of 7 'a' in 10
