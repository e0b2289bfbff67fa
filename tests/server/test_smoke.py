import pytest


async def test_rig_registers_the_cast(rig):
    from voisinage.models.resident import Resident

    assert await rig.count(Resident) == 4
    assert rig["alder"].village == "north"


async def test_a_failed_start_closes_the_outgoing_http_client(db_url, tmp_path, monkeypatch):
    """A start-up that fails after the federation context made its HTTP client (here the instance
    actor cannot be stored) closes that client: aiohttp cleans up only the contexts that started."""
    from aiohttp import web

    from voisinage.federation.transport import HttpTransport
    from voisinage.server import app as app_module

    from ..conftest import make_settings

    async def broken(ctx):
        raise RuntimeError("the instance actor cannot be stored")

    closed = []
    close = HttpTransport.close

    async def recording_close(self):
        closed.append(self)
        await close(self)

    monkeypatch.setattr(app_module, "ensure_instance_actor", broken)
    monkeypatch.setattr(HttpTransport, "close", recording_close)
    runner = web.AppRunner(app_module.create_app(make_settings(db_url, tmp_path)))
    try:
        with pytest.raises(RuntimeError, match="instance actor"):
            await runner.setup()
        assert len(closed) == 1 and closed[0]._session is None
    finally:
        await runner.cleanup()
