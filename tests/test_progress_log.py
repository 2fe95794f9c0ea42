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


def test_labeling_a_large_pool_says_how_far_it_is():
    """CoLA's 7,695 texts were labeled for 6 minutes per model without a line: one line at most every
    PROGRESS_EVERY_S, with the texts done, the rate and the time left; none once all are done."""
    from tasks import tracking

    lines = []

    class Log:
        def info(self, fmt, *args):
            lines.append(fmt % args)

    times = iter([0.0, 30.0, 61.0, 90.0, 125.0, 400.0])  # the start, then one clock read per shard
    progress = tracking.texts_logger("labeling with pattern model abc", 3000, Log(), clock=lambda: next(times))
    for done in (500, 1000, 1500, 2000, 3000):
        progress(done)
    assert lines == ["labeling with pattern model abc: 1,000 of 3,000 texts, 16.4 texts/s, about 2 min left",
                     "labeling with pattern model abc: 2,000 of 3,000 texts, 16.0 texts/s, about 62 s left"]
