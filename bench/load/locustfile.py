"""The mixed load of a labeling team, for locust (run by ``bench/load/run.py``).

Annotators fetch the next task, submit a completion for it and browse task pages; one importer
adds 100 tasks at a time; one exporter runs a background export (GraphQL ``startExport``) and
polls it. Every request goes to one of ``LOAD_HOSTS`` (comma-separated base URLs) in turn, as a
load balancer would spread them. Successful completion POSTs are counted into ``LOAD_LEDGER``
(one line per completion id) so the runner can count lost writes afterwards.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from typing import Any

from locust import FastHttpUser, between, constant, events, task

HOSTS = [h for h in os.environ.get("LOAD_HOSTS", "").split(",") if h]
LEDGER = os.environ.get("LOAD_LEDGER", "completions.txt")
PAGES = int(os.environ.get("LOAD_PAGES", "1000"))
WAIT = float(os.environ.get("LOAD_WAIT", "0.05"))
_turn = itertools.cycle(range(max(1, len(HOSTS))))
_ledger_lock = threading.Lock()
_ledger: list[int] = []


def _host() -> str:
    return HOSTS[next(_turn)] if HOSTS else ""


@events.quitting.add_listener
def _write_ledger(environment: Any, **_kwargs: Any) -> None:
    with open(LEDGER, "w", encoding="utf-8") as out:
        out.writelines(f"{cid}\n" for cid in _ledger)


class Annotator(FastHttpUser):
    weight = 8
    wait_time = between(0.0, WAIT)

    @task(4)
    def next_and_submit(self) -> None:
        with self.client.get(_host() + "/api/project/next", name="next", catch_response=True) as r:
            if r.status_code == 404:  # every task labeled: not an error
                r.success()
                return
            if r.status_code != 200:
                r.failure(f"next: {r.status_code}")
                return
            task_id = r.json()["id"]
        body = {"result": [], "lead_time": round(random.random() * 10, 3)}
        with self.client.post(
            _host() + f"/api/tasks/{task_id}/completions",
            json=body,
            name="completion",
            catch_response=True,
        ) as r:
            if r.status_code != 201:
                r.failure(f"completion: {r.status_code}")
                return
            with _ledger_lock:
                _ledger.append(int(r.json()["id"]))

    @task(3)
    def browse(self) -> None:
        page = random.randint(1, PAGES)
        self.client.get(_host() + f"/api/tasks?page={page}&page_size=10", name="page")

    @task(2)
    def open_task(self) -> None:
        task_id = random.randint(1, PAGES * 10)
        self.client.get(_host() + f"/api/tasks/{task_id}", name="task")


class Importer(FastHttpUser):
    fixed_count = 1
    wait_time = constant(1.0)

    @task
    def import_tasks(self) -> None:
        tasks = [{"text": f"imported {time.time()} {i}"} for i in range(100)]
        self.client.post(_host() + "/api/project/import", json=tasks, name="import 100")


class Exporter(FastHttpUser):
    fixed_count = 1
    wait_time = constant(2.0)

    @task
    def export(self) -> None:
        start = {"query": 'mutation { startExport(format: "JSON_MIN") { id } }'}
        r = self.client.post(_host() + "/graphql", json=start, name="startExport")
        if r.status_code != 200 or "errors" in r.json():
            return
        job_id = r.json()["data"]["startExport"]["id"]
        poll = {
            "query": "query J($id: Int!) { job(id: $id) { state } }",
            "variables": {"id": job_id},
        }
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = self.client.post(_host() + "/graphql", json=poll, name="job").json()
            if state["data"]["job"]["state"] in ("DONE", "FAILED"):
                if state["data"]["job"]["state"] == "FAILED":
                    events.request.fire(
                        request_type="JOB",
                        name="export failed",
                        response_time=0,
                        response_length=0,
                        exception=RuntimeError("export job failed"),
                    )
                return
            time.sleep(0.5)
