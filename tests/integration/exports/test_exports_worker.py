"""The whole path with a real Dramatiq worker: the API stores the export and its job (outbox),
the relay hands it to Redis, a worker process (`dramatiq workers.worker`) consumes the `exports`
queue and writes the file; the client polls until the link is there and downloads it."""

from __future__ import annotations

import asyncio

from spotless.app import create_app
from tests.conftest import make_settings, test_env
from tests.support import processes
from tests.support.client import app_client
from tests.support.factories import arrange, new_client
from tests.support.identity import signup


async def test_an_export_requested_through_the_api_is_run_by_a_worker(tmp_path, owner_engine):
    env = {"ORDER_STORAGE_BACKEND": "local", "ORDER_UPLOAD_ROOT": str(tmp_path / "uploads")}
    worker = processes.start_worker(test_env(**env), threads=2)
    try:
        async with app_client(create_app(make_settings(**env))) as api:
            owner = await signup(api)
            async with arrange(owner_engine) as db:
                await new_client(db, owner.org_id, name="=1+1", notes="hostile")
            created = await api.post("/v1/exports", json={"kind": "clients"}, headers=owner.headers)
            assert created.status_code == 202, created.text
            state: dict = {}
            for _ in range(300):
                state = (await api.get(f"/v1/exports/{created.json()['id']}", headers=owner.headers)).json()
                if state["status"] in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.2)
            assert state["status"] == "succeeded", (state, worker.log()[-3000:])
            downloaded = await api.get(state["download_url"])
            assert downloaded.status_code == 200
            assert "'=1+1" in downloaded.content.decode("utf-8-sig")
    finally:
        worker.stop()
