"""Progress of a long training loop in the run's log (tasks.tracking.step_logger)."""


def test_long_training_says_how_far_it_is_in_the_log(tmp_path):
    """A progress line at most every PROGRESS_EVERY_S (tqdm's bar shows only on a terminal), timed from the loop's
    own step 0 (not from model loading or another loop before it), the metrics to MLflow at every logged step."""
    import mlflow

    from tasks import tracking

    lines = []

    class Log:
        def info(self, fmt, *args):
            lines.append(fmt % args)

    times = iter([500.0, 501.0, 530.0, 561.0, 700.0])  # one clock read per call with the loop's metric
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run() as run:
            log_fn = tracking.step_logger("distill", 300, "distill_loss", Log(), clock=lambda: next(times))
            log_fn({"pair_loss": 0.2}, 0)  # another loop first (SetFit's pairs): logged, not timed
            log_fn({"pair_loss": 0.2}, 10)
            for step in (0, 10, 20, 30):  # step 0 at 500 s (the clock starts), then 1 s, 30 s, 61 s later
                log_fn({"distill_loss": 0.5}, step)
            log_fn({"distill_loss": 0.25}, 290)  # 200 s after step 0
        history = mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id, "distill_loss")
    finally:
        mlflow.set_tracking_uri(before)
    assert lines == ["distill: step 31 of 300 (distill_loss 0.500), 2.0 s a step, about 9 min left",
                     "distill: step 291 of 300 (distill_loss 0.250), 0.69 s a step, about 6 s left"]
    assert [m.step for m in history] == [0, 10, 20, 30, 290]
