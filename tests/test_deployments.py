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
        assert (REPO / dep["parameters"]["config_path"]).exists()
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
