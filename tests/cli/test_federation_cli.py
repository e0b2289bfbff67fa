"""`voisinage partner add|remove|list`, `neighbour add` refusals, and `voisinage worker` (SIGTERM)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from voisinage.federation.context import FederationContext
from voisinage.federation.outbox import publish
from voisinage.federation.transport import HttpTransport
from voisinage.models.actor import GROUP, Actor
from voisinage.models.delivery import Delivery
from voisinage.models.instance import Instance as InstanceRow

from ..rig.process import WorkerProcess, free_port
from .test_cli import Instance, assert_one_line_error


def test_partner_add_list_remove(instance: Instance) -> None:
    assert "b.test is a partner" in instance.ok("partner", "add", "B.Test").output
    instance.ok("partner", "add", "c.test:8443")
    assert instance.ok("partner", "list").output.split() == ["b.test", "c.test:8443"]
    instance.ok("partner", "remove", "b.test")
    assert instance.ok("partner", "list").output.split() == ["c.test:8443"]
    rows = instance.rows(InstanceRow, InstanceRow.host == "b.test")
    assert rows and rows[0].partner is False


def test_partner_refusals(sqlite_instance: Instance) -> None:
    assert_one_line_error(sqlite_instance.invoke("partner", "add", "https://b.test/x"))
    assert_one_line_error(sqlite_instance.invoke("partner", "remove", "never.test"), "not a partner")
    assert sqlite_instance.ok("partner", "list").output == ""


def test_neighbour_add_refusals(sqlite_instance: Instance) -> None:
    sqlite_instance.ok("village", "add", "north", "--name", "Nord")
    assert_one_line_error(sqlite_instance.invoke("neighbour", "add", "nowhere", "@north@b.test"), "no village")
    result = sqlite_instance.invoke("neighbour", "add", "north", "@north@b.test")  # b.test is no partner
    assert_one_line_error(result)
    assert sqlite_instance.count(Delivery) == 0
    assert_one_line_error(sqlite_instance.invoke("neighbour", "add", "north", "not a handle"))


def _enqueue_unreachable(instance: Instance, host: str) -> None:
    async def work(session: Any) -> None:
        session.add(InstanceRow(host=host, partner=True, blocked=False, failure_days=[]))
        await session.flush()
        village = await session.scalar(select(Actor).where(Actor.kind == GROUP))
        ctx = FederationContext(base_url="https://vg.test", domain="vg.test", scheme="https",
                                sessionmaker=None, transport=HttpTransport())  # type: ignore[arg-type]
        await publish(session, ctx, {"id": f"{village.uri}#t", "type": "Note"}, village, [f"http://{host}/inbox"])
        await session.commit()

    instance.query(work)


def test_worker_delivers_and_stops_on_sigterm(sqlite_instance: Instance) -> None:
    sqlite_instance.config.write_text(sqlite_instance.config.read_text()
                                      + "[federation]\nallow_private_addresses = true\n")
    sqlite_instance.ok("village", "add", "north", "--name", "Nord")
    host = f"127.0.0.1:{free_port()}"  # nobody listens: the delivery fails and is rescheduled
    _enqueue_unreachable(sqlite_instance, host)
    worker = WorkerProcess(sqlite_instance.config).start()
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            rows = sqlite_instance.rows(Delivery)
            if rows and rows[0].attempts >= 1:
                break
            time.sleep(0.2)
    finally:
        code = worker.stop()  # SIGTERM, then kill if it does not exit
    assert code == 0, worker.log_path.read_text()
    row = sqlite_instance.rows(Delivery)[0]
    assert row.attempts == 1 and row.state == "pending" and row.locked_until is None
    assert row.last_error
