"""`customer-service import FILE` against a real server: CSV and JSON Lines."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from customer_api.server import ApiServer
from customer_core.context import Context

CSV = """external_id,family_external_id,family_display_name,username,display_name,email,role,milk,size,restrictions,allergies,favorites,opening_points
p-1,f-1,The Smiths,ana,Ana Smith,ana@example.com,owner,oat,large,vegan;nut_free,Peanuts,"[{""drinkId"": ""latte"", ""drinkName"": ""Latte"", ""isUsual"": true}]",120
p-2,f-1,,ben,Ben Smith,,child,,,,,,0
p-3,f-1,,b,Bad Name,,adult,,,,,,0
p-4,f-2,Others,cy,Cy,,adult,goat,,,,,0
"""  # noqa: E501


async def run_cli(server: ApiServer, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "customer_launcher",
        "import",
        *args,
        "--target",
        f"127.0.0.1:{server.port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_csv_file_is_imported_with_its_bad_lines_reported(
    ctx: Context, server: ApiServer, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    code, out, err = await run_cli(server, str(path))
    assert code == 1, (out, err)
    assert out.splitlines()[0] == ("received 3: created 2, updated 0, unchanged 0, rejected 2")
    assert "line 5: not sent: milk: unknown value 'goat'" in out
    assert "line 4 (p-3): username: must be 3..32" in out
    assert "100%" in err and "4/4 records" in err
    async with ctx.pool.acquire() as conn:
        ana = await conn.fetchrow(
            "SELECT c.role, c.preferences, c.dietary_restrictions, c.allergies, a.balance,"
            " (SELECT count(*) FROM favorites f WHERE f.customer_id = c.id AND f.is_usual)"
            " AS usual FROM customers c JOIN loyalty_accounts a ON a.customer_id = c.id"
            " WHERE c.username = 'ana'"
        )
    assert ana["role"] == "owner"
    assert ana["preferences"] == {"milk": "oat", "size": "large"}
    assert sorted(ana["dietary_restrictions"]) == ["nut_free", "vegan"]
    assert (ana["allergies"], ana["balance"], ana["usual"]) == (["Peanuts"], 120, 1)
    # The same file again: nothing changes.
    code, out, _ = await run_cli(server, str(path))
    assert out.splitlines()[0] == "received 3: created 0, updated 0, unchanged 2, rejected 2"


async def test_a_json_lines_file_is_imported(server: ApiServer, tmp_path: Path) -> None:
    lines = [
        {
            "externalId": f"j-{i}",
            "familyExternalId": "jf",
            "familyDisplayName": "J",
            "username": f"json_{i}",
            "displayName": f"J {i}",
            "role": "FAMILY_ROLE_ADULT",
            "preferences": {"milk": "MILK_TYPE_SOY"},
            "openingPoints": "5",
        }
        for i in range(450)
    ]
    path = tmp_path / "people.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{not json}\n")
    code, out, _ = await run_cli(server, str(path), "--per-message", "100")
    assert code == 1
    assert out.splitlines()[0] == "received 450: created 450, updated 0, unchanged 0, rejected 1"
    assert out.splitlines()[1].startswith("line 451: not sent:")


async def test_an_unreachable_server_is_one_line_and_exit_status_4(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text('{"externalId": "x"}\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "customer_launcher",
        "import",
        str(path),
        "--target",
        "127.0.0.1:1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 4
    assert "unavailable" in err.decode().splitlines()[-1]
