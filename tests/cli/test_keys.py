"""`pokewatch keys create|list|revoke` and `pokewatch redis-acl`, as the docs show them."""

from __future__ import annotations


def test_create_list_revoke(pokewatch) -> None:
    created = pokewatch("keys", "create", "--name", "my-notifier", "--rate", "50")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("pw_") and key not in created.stderr
    key_id = key.split("_")[1]
    listed = pokewatch("keys", "list")
    assert listed.returncode == 0 and "my-notifier" in listed.stdout and key_id in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout, "the secret is never shown again"
    revoked = pokewatch("keys", "revoke", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stderr
    assert pokewatch("keys", "revoke", "nope").returncode == 1


def test_keys_say_which_broker_they_could_not_reach(pokewatch, cli_env) -> None:
    cli_env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    failed = pokewatch("keys", "list")
    assert failed.returncode == 2 and "cannot reach the broker" in failed.stderr


def test_redis_acl_prints_placeholders_or_the_environment_passwords(pokewatch, cli_env) -> None:
    placeholders = pokewatch("redis-acl")
    assert placeholders.returncode == 0 and "user default off" in placeholders.stdout
    assert pokewatch("redis-acl", "--from-env").returncode == 2
