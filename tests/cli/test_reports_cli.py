"""`voisinage reports list` shows the reports residents made, newest first."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from voisinage.server.cli import cli


async def test_reports_list_shows_what_residents_reported(rig, settings, tmp_path):
    status, post = await rig.api("cedar").post("/api/v1/statuses", json={"status": "Vends un chiot"})
    assert status == 200
    status, report = await rig.api("alder").post("/api/v1/reports", json={
        "account_id": rig["cedar"].id, "status_ids": [post["id"]], "comment": "vente\nd'animaux",
        "category": "violation", "rule_ids": ["3"]})
    assert status == 200, report
    config = tmp_path / "v.toml"
    config.write_text(f'[instance]\ndomain = "a.test"\n[database]\nurl = "{settings.database.url}"\n')
    # the command runs its own event loop: call it from a thread, as a shell would from outside
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["--config", str(config), "reports", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    fields = lines[0].split("\t")
    assert fields[0] == report["id"]
    assert fields[2:8] == ["@alder", "@cedar", "violation", "3", post["id"], "vente d'animaux"]


def test_reports_list_on_a_fresh_config_prints_nothing(tmp_path):
    config = tmp_path / "v.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "fresh.db"}"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "reports", "list"])
    assert result.exit_code == 0 and result.output == ""
