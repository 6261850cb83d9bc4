"""The ACL rules: the shipped template matches the code, and every key the roles use is covered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from contracts import acl, keys

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_template_is_rendered_from_the_code() -> None:
    shipped = (ROOT / "k8s/base/redis/users.acl.template").read_text()
    assert shipped == acl.acl_file(), "regenerate with: pokewatch redis-acl > k8s/base/redis/users.acl.template"
    assert "${REDIS_GATEWAY_PASSWORD}" in shipped and "user default off" in shipped


def test_cli_fills_passwords_from_the_environment_or_refuses() -> None:
    cmd = [sys.executable, "-m", "workers.cli", "redis-acl", "--from-env"]
    env = {f"REDIS_{r.upper()}_PASSWORD": f"pw-{r}" for r in acl.ROLE_RULES}
    out = subprocess.run(cmd, env={**env, "PATH": ""}, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert ">pw-gateway" in out and "${" not in out
    env.pop("REDIS_PIPELINE_PASSWORD")
    refused = subprocess.run(cmd, env={**env, "PATH": ""}, capture_output=True, text=True, cwd=ROOT)
    assert refused.returncode == 2 and "REDIS_PIPELINE_PASSWORD" in refused.stderr


def test_no_role_but_admin_gets_dangerous_commands() -> None:
    for role, rules in acl.ROLE_RULES.items():
        if role == "admin":
            continue
        granted = set(rules.split())
        assert not granted & {"+@all", "+flushall", "+flushdb", "+config", "+keys", "+acl", "+debug", "~*"}, role
        assert all(not r.startswith("~*") for r in granted), role
    assert f"~{keys.MODEL_EVENTS_STREAM}" in acl.ROLE_RULES["pipeline"]
    assert keys.MODEL_EVENTS_STREAM not in acl.ROLE_RULES["gateway"]
