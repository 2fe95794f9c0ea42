import json

import pytest
import yaml

from conftest import REPO
from deployments import watch
from deployments.serve import EVENT, build_deployments


def test_scheduled_and_event_triggered_deployments():
    scheduled, on_new = build_deployments("configs/sst2.yaml", cron="30 3 * * *")
    assert scheduled.name == "pet-scheduled"
    assert scheduled.schedules[0].schedule.cron == "30 3 * * *"
    assert scheduled.parameters == {"config_path": "configs/sst2.yaml"}
    trigger = on_new.triggers[0]
    assert trigger.expect == {EVENT}
    assert trigger.parameters["unlabeled_path"] == "{{ event.payload.path }}"
    assert on_new.name == "relabel-on-new-data"


def test_prefect_yaml_entrypoints_load():
    from prefect.flows import load_flow_from_entrypoint

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = {}
    for dep in spec["deployments"]:
        path, fn = dep["entrypoint"].split(":")
        flow = load_flow_from_entrypoint(str(REPO / path) + ":" + fn)
        names[dep["name"]] = flow.name
        assert dep["parameters"]["config_path"] == "{{ $PET_CONFIG }}" and dep["concurrency_limit"] == 1
    assert spec["build"][0]["prefect.deployments.steps.run_shell_script"]["script"] == "python -m deployments.check_env"
    assert names == {"pet-scheduled": "pet", "relabel-on-new-data": "relabel"}
    trig = spec["deployments"][1]["triggers"][0]
    assert trig["expect"] == [EVENT] and "event.payload.path" in trig["parameters"]["unlabeled_path"]


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


def test_deployments_run_one_at_a_time_with_a_timeout():
    scheduled, on_new = build_deployments("configs/sst2.yaml")
    for dep in (scheduled, on_new):
        assert dep.concurrency_limit == 1
    from flows.pet_flow import pet_flow

    assert pet_flow.on_failure_hooks and pet_flow.on_crashed_hooks


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
