import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from deployments import watch
from deployments.definitions import EVENT
from deployments.serve import build_deployments


def test_scheduled_and_event_triggered_deployments(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("PET_CONFIG", "configs/sst2.yaml")
    monkeypatch.setenv("PET_CRON", "30 3 * * *")
    scheduled, on_new = build_deployments()
    assert scheduled.name == "pet-scheduled"
    assert scheduled.schedules[0].schedule.cron == "30 3 * * *"
    assert scheduled.parameters == {"config_path": "configs/sst2.yaml"}
    trigger = on_new.triggers[0]
    assert trigger.expect == {EVENT}
    assert trigger.parameters["unlabeled_path"] == "{{ event.payload.path }}"
    assert on_new.name == "relabel-on-new-data"


def test_committed_prefect_yaml_is_the_rendered_one():
    from deployments.render_yaml import render

    assert (REPO / "prefect.yaml").read_text() == render(), "run python -m deployments.render_yaml"


def _deployed_from_yaml(env: dict) -> dict:
    """prefect.yaml as `prefect deploy` resolves it: $VARS from the environment, then the outputs of
    the build steps that have an id (run here as prefect would run them)."""
    from prefect.utilities.templating import apply_values

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    outputs = {}
    for step in spec["build"]:
        args = step["prefect.deployments.steps.run_shell_script"]
        if "id" in args:
            cmd = [sys.executable if w == "python" else w for w in args["script"].split()]
            done = subprocess.run(cmd, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, check=True)
            outputs[args["id"]] = {"stdout": done.stdout.strip()}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        spec = apply_values(spec, os.environ, remove_notset=False)
    return {d["name"]: apply_values(d, outputs, skip_prefixes=["event."]) for d in spec["deployments"]}


def test_prefect_yaml_deploys_what_serve_serves(monkeypatch, tmp_path):
    """Same entrypoints, schedule, trigger, parameters, concurrency; and the flow a worker loads from
    the YAML has the config's runner and the timeout, as the served one does."""
    from prefect.flows import load_flow_from_entrypoint

    raw = yaml.safe_load((REPO / "configs" / "sst2-splade-tiny.yaml").read_text())
    raw["parallelism"] = 3
    config = tmp_path / "three.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = {"PET_CONFIG": str(config), "PET_CRON": "15 4 * * 1", "PET_TIMEOUT_HOURS": "0.5"}
    monkeypatch.chdir(REPO)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    served = {d.name: d for d in build_deployments()}
    deployed = _deployed_from_yaml(env)
    assert set(served) == set(deployed) == {"pet-scheduled", "relabel-on-new-data"}
    for name, dep in deployed.items():
        s = served[name]
        assert dep["entrypoint"] == s.entrypoint
        assert dep["parameters"] == s.parameters == {"config_path": str(config)}
        assert dep["concurrency_limit"] == s.concurrency_limit == 1
        assert dep["tags"] == s.tags and dep["description"] == s.description
        assert [(c["cron"], c["timezone"]) for c in dep.get("schedules", [])] == \
            [(c.schedule.cron, c.schedule.timezone) for c in s.schedules]
        assert [(set(t["expect"]), t["match"], t["parameters"]) for t in dep.get("triggers", [])] == \
            [(t.expect, t.match.model_dump(), t.parameters) for t in s.triggers]
        worker_env = dep["work_pool"]["job_variables"]["env"]
        assert worker_env == {"PET_CONFIG": str(config), "PET_TIMEOUT_HOURS": "0.5"}
        with pytest.MonkeyPatch.context() as mp:  # the worker's run: a fresh import with the job's env
            for k, v in worker_env.items():
                mp.setenv(k, v)
            flow = load_flow_from_entrypoint(dep["entrypoint"])
        assert flow.name == {"pet-scheduled": "pet", "relabel-on-new-data": "relabel"}[name]
        assert flow.timeout_seconds == 1800
        assert type(flow.task_runner).__name__ == "ThreadPoolTaskRunner" and flow.task_runner._max_workers == 3
    assert served["pet-scheduled"].schedules[0].schedule.cron == "15 4 * * 1"
    assert served["relabel-on-new-data"].triggers[0].expect == {EVENT}
    build = yaml.safe_load((REPO / "prefect.yaml").read_text())["build"]
    assert build[0]["prefect.deployments.steps.run_shell_script"]["script"] == "python -m deployments.check_env"


def test_watch_announces_each_new_file_once(tmp_path):
    sent = []
    (tmp_path / "a.csv").write_text("text\nhello\n")
    (tmp_path / "notes.txt").write_text("not data")
    assert watch.scan(tmp_path, lambda p, d: sent.append((p.name, d))) == [tmp_path / "a.csv"]
    assert watch.scan(tmp_path, lambda p, d: sent.append((p.name, d))) == []
    (tmp_path / "a_copy.csv").write_text("text\nhello\n")  # same content under another name
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "new"}))
    watch.scan(tmp_path, lambda p, d: sent.append((p.name, d)))
    assert [s[0] for s in sent] == ["a.csv", "b.jsonl"]
    assert len(json.loads((tmp_path / watch.STATE).read_text())) == 2


def test_watch_refuses_a_missing_inbox(tmp_path):
    with pytest.raises(NotADirectoryError):
        watch.scan(tmp_path / "missing")


def test_watch_waits_for_a_file_to_stop_changing(tmp_path):
    import os
    import time

    sent = []
    (tmp_path / "half.csv").write_text("text\nhalf a sen")  # a copy still under way: just modified
    assert watch.scan(tmp_path, lambda p, d: sent.append(p.name), settle=30) == []
    old = time.time() - 60
    os.utime(tmp_path / "half.csv", (old, old))  # unchanged for a minute: finished
    assert [p.name for p in watch.scan(tmp_path, lambda p, d: sent.append(p.name), settle=30)] == ["half.csv"]


def test_watch_records_a_file_only_after_its_event_is_sent(tmp_path):
    (tmp_path / "a.csv").write_text("text\nhello\n")

    def down(path, digest):
        raise watch.EventNotSent("server down")

    assert watch.scan(tmp_path, down) == []
    assert not (tmp_path / watch.STATE).exists() or json.loads((tmp_path / watch.STATE).read_text()) == []
    sent = []
    assert watch.scan(tmp_path, lambda p, d: sent.append(p.name)) == [tmp_path / "a.csv"]  # retried
    assert sent == ["a.csv"]


def test_watch_without_a_reachable_server_does_not_pretend(tmp_path):
    import socket

    from prefect.settings import PREFECT_API_URL, temporary_settings

    (tmp_path / "a.csv").write_text("text\nhello\n")
    with temporary_settings({PREFECT_API_URL: None}):
        with pytest.raises(watch.EventNotSent, match="PREFECT_API_URL"):
            watch.emit_arrival(tmp_path / "a.csv", "d")
    with socket.socket() as s:  # a local port nobody listens on: the server is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
        with pytest.raises(watch.EventNotSent, match="does not answer"):
            watch.emit_arrival(tmp_path / "a.csv", "d")
        assert watch.scan(tmp_path, log=lambda m: None) == []  # the real emitter: not recorded
    assert not (tmp_path / watch.STATE).exists()


def test_watch_quarantines_bad_files_and_replays_on_request(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.csv").write_text("sentence\na fine film\n")
    (inbox / "bad.csv").write_text("wrong_column\nno text here\n")
    check = watch.checker_for(str(REPO / "configs" / "sst2-splade-tiny.yaml"))  # reads column `sentence`
    sent = []
    assert watch.scan(inbox, lambda p, d: sent.append(p.name), check=check) == [inbox / "good.csv"]
    assert not (inbox / "bad.csv").exists()
    reason = (inbox / "quarantine" / "bad.csv.reason.txt").read_text()
    assert "sentence" in reason  # names the missing column
    watch.replay(inbox, "good.csv")
    assert watch.scan(inbox, lambda p, d: sent.append(p.name), check=check) == [inbox / "good.csv"]
    assert sent == ["good.csv", "good.csv"]


def test_deployments_run_one_at_a_time_with_a_timeout(monkeypatch):
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("PET_CONFIG", "configs/sst2.yaml")
    monkeypatch.delenv("PET_TIMEOUT_HOURS", raising=False)
    for dep in build_deployments():
        assert dep.concurrency_limit == 1
        assert load_flow_from_entrypoint(dep.entrypoint).timeout_seconds == 6 * 3600  # the default
    monkeypatch.setenv("PET_TIMEOUT_HOURS", "0")
    with pytest.raises(ValueError, match="PET_TIMEOUT_HOURS"):
        build_deployments()
    from flows.pet_flow import pet_flow

    assert pet_flow.on_failure_hooks and pet_flow.on_crashed_hooks


def test_a_run_past_its_timeout_is_stopped(prefect_harness):
    import time

    from prefect import flow

    from deployments.definitions import configured

    @flow
    def hangs():
        time.sleep(8)

    state = configured(hangs, str(REPO / "configs" / "sst2.yaml"), timeout_seconds=1)(return_state=True)
    assert state.is_failed() and state.name == "TimedOut"


def test_failure_hook_posts_to_the_webhook(monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from types import SimpleNamespace

    from flows.hooks import notify_failure

    got = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    monkeypatch.setenv("PET_FAILURE_WEBHOOK", f"http://127.0.0.1:{server.server_port}/hook")
    state = SimpleNamespace(type=SimpleNamespace(value="FAILED"), message="boom")
    run = SimpleNamespace(id="r1", name="brave-fox", parameters={"config_path": "c.yaml"})
    notify_failure(SimpleNamespace(name="pet"), run, state)
    server.server_close()
    assert got == [{"flow": "pet", "flow_run_id": "r1", "flow_run_name": "brave-fox", "state": "FAILED",
                    "message": "boom", "parameters": {"config_path": "c.yaml"}}]


def test_deploying_without_repo_dir_or_config_is_refused(tmp_path):
    from deployments.check_env import problems

    assert any("PET_REPO_DIR is not set" in p for p in problems({"PET_CONFIG": "configs/sst2.yaml"}))
    assert any("not a checkout" in p for p in problems({"PET_REPO_DIR": str(tmp_path), "PET_CONFIG": "c.yaml"}))
    assert any("PET_CONFIG is not set" in p for p in problems({"PET_REPO_DIR": str(REPO)}))
    assert any("no such file" in p for p in problems({"PET_REPO_DIR": str(REPO), "PET_CONFIG": "configs/nope.yaml"}))
    assert problems({"PET_REPO_DIR": str(REPO), "PET_CONFIG": "configs/sst2-splade-tiny.yaml"}) == []
