"""Progress of a long training loop in the run's log (tasks.tracking.step_logger)."""


def test_long_training_says_how_far_it_is_in_the_log(tmp_path):
    """A progress line at most every PROGRESS_EVERY_S (tqdm's bar shows only on a terminal), the metrics to MLflow
    at every logged step."""
    import mlflow

    from tasks import tracking

    lines = []

    class Log:
        def info(self, fmt, *args):
            lines.append(fmt % args)

    times = iter([0.0, 1.0, 30.0, 61.0, 62.0, 200.0, 201.0])  # started, then one clock read per call
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run() as run:
        log_fn = tracking.step_logger("distill", 300, "distill_loss", Log(), clock=lambda: next(times))
        for step in (0, 10, 20, 30):  # 1 s, 30 s, 61 s, 62 s after the start
            log_fn({"distill_loss": 0.5}, step)
        log_fn({"pair_loss": 0.2}, 40)  # another loop's metric: logged, no line
        log_fn({"distill_loss": 0.25}, 290)
    assert lines == ["distill: step 20 of 300 (distill_loss 0.500), 3.0 s a step, about 14 min left",
                     "distill: step 290 of 300 (distill_loss 0.250), 0.69 s a step, about 7 s left"]
    history = mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id, "distill_loss")
    assert [m.step for m in history] == [0, 10, 20, 30, 290]
