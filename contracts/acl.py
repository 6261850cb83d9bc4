"""Redis ACL users, one per role, allowed only the commands and keys it needs.

| user       | who                                  | may                                                        |
|------------|--------------------------------------|------------------------------------------------------------|
| `gateway`  | REST gateway replicas                | XADD requests; read catalog, history, heartbeats, API keys, |
|            |                                      | signal changes (SSE); its users' watchlists                |
|            |                                      | subscribe to reply channels; the rate-limit script         |
| `worker`   | model and decision workers           | read/ack/claim their streams, write the next stream,       |
|            |                                      | signals, dead letters, replies, heartbeats and the catalog;|
|            |                                      | scan claims, last signals and signal changes (a script)    |
| `notifier` | `pokewatch worker notifier`          | read/ack/claim signal changes, price updates and alerts;   |
|            |                                      | XADD alerts and dead letters; read watchlists; heartbeat   |
| `challenger` | challenger replicas                | read/ack/claim requests in group `shadow` (never XADD      |
|            |                                      | them); XADD shadow quotes only; heartbeat; read events     |
| `pipeline` | Airflow tasks, `pokewatch model ...` | XADD model events and run records; read shadow quotes and  |
|            |                                      | heartbeats; write the lifecycle record                     |
| `monitor`  | metrics exporter, `pokewatch top`    | read stream and group figures, heartbeats, run records     |
| `scaler`   | KEDA (autoscaling on lag)            | XINFO / XPENDING / XLEN on the request streams, read-only  |
| `admin`    | operators, `pokewatch keys`          | everything (keep its password in the secret store)         |

Nobody but `admin` can FLUSHALL, CONFIG, KEYS, or write a stream it does not
own: the gateway cannot publish model events, the pipeline cannot forge
requests. Commands called from a Lua script are checked too, so the gateway's
rate-limit script is allowed TIME, GET and SET on its own keys only.

`acl_file(passwords)` renders the users as an ACL file (`aclfile` in the
server's config); `pokewatch redis-acl` prints it. Passwords are never in
the repository: the shipped Kubernetes file has placeholders that the
deployment replaces from a Secret.
"""

from __future__ import annotations

from contracts import keys

CONNECT = "+ping +select +client|setinfo +client|setname +hello"

ROLE_RULES: dict[str, str] = {
    "gateway": " ".join(
        [
            CONNECT,
            "+xadd +xgroup|create +xread +xrevrange +xinfo|groups +hget +hgetall +hset +hdel +hlen +get",
            "+subscribe +unsubscribe",
            "+evalsha +eval +script|load +script|exists +time +set +sadd +incrby +multi +exec +discard",
            f"~{keys.PREDICT_STREAM} ~{keys.RATE_LIMIT_PREFIX}* ~{keys.WATCHLISTS_PREFIX}*",
            f"~{keys.WATCHLIST_OWNERS} ~{keys.WATCHLIST_VERSION}",
            f"%R~{keys.REPLICAS_HASH} %R~{keys.CATALOG_HASH} %R~{keys.CATALOG_VERSION_KEY}",
            f"%R~{keys.HISTORY_HASH} %R~{keys.API_KEYS_HASH} %R~{keys.SIGNAL_CHANGES_STREAM}",
            f"%R~{keys.LIFECYCLE_KEY}",
            f"&{keys.reply_channel('*')}",
        ]
    ),
    "worker": " ".join(
        [
            CONNECT,
            "+xreadgroup +xread +xrevrange +xack +xautoclaim +xclaim +xpending +xadd +xinfo|groups +xinfo|consumers",
            "+xgroup|create +xgroup|createconsumer +xgroup|delconsumer",
            "+publish +hset +hdel +hget +hgetall +get +set +del +rename +multi +exec +discard",
            "+evalsha +script|load +script|exists",
            f"~{keys.PREDICT_STREAM} ~{keys.QUOTES_STREAM} ~{keys.SIGNALS_STREAM} ~{keys.DEAD_LETTER_STREAM}",
            f"~{keys.SIGNAL_CHANGES_STREAM} ~{keys.PRICE_UPDATES_STREAM} ~{keys.LAST_SIGNAL_HASH} ~{keys.SCAN_PREFIX}*",
            f"%R~{keys.MODEL_EVENTS_STREAM} ~{keys.REPLICAS_HASH} ~{keys.CATALOG_HASH}* ~{keys.HISTORY_HASH}*",
            f"&{keys.reply_channel('*')}",
        ]
    ),
    # Reads its three streams in its group; writes only alerts, dead letters and its
    # heartbeat (a selector: XADD on those two streams alone); watchlists read-only.
    "notifier": " ".join(
        [
            CONNECT,
            "+xreadgroup +xack +xautoclaim +xclaim +xpending +xinfo|groups +xinfo|consumers",
            "+xgroup|create +xgroup|createconsumer +xgroup|delconsumer +hget +hgetall +smembers +get",
            "+hset +hdel +multi +exec +discard",
            f"~{keys.SIGNAL_CHANGES_STREAM} ~{keys.PRICE_UPDATES_STREAM} ~{keys.ALERTS_STREAM} ~{keys.REPLICAS_HASH}",
            f"%R~{keys.WATCHLISTS_PREFIX}* %R~{keys.WATCHLIST_OWNERS} %R~{keys.WATCHLIST_VERSION}",
            f"(+xadd ~{keys.ALERTS_STREAM} ~{keys.DEAD_LETTER_STREAM})",
        ]
    ),
    # Reads the requests in its own group and may append to its shadow stream alone (a
    # selector): it can neither forge requests nor answer users.
    "challenger": " ".join(
        [
            CONNECT,
            "+xreadgroup +xread +xrevrange +xack +xautoclaim +xclaim +xpending +xinfo|groups +xinfo|consumers",
            "+xgroup|create +xgroup|createconsumer +xgroup|delconsumer +hset +hdel +multi +exec +discard",
            f"~{keys.PREDICT_STREAM} ~{keys.REPLICAS_HASH} %R~{keys.MODEL_EVENTS_STREAM}",
            f"(+xadd ~{keys.SHADOW_STREAM})",
        ]
    ),
    "pipeline": " ".join(
        [
            CONNECT,
            "+xadd +xrange +xrevrange +set +hvals",
            f"~{keys.MODEL_EVENTS_STREAM} ~{keys.PIPELINE_RUNS_STREAM} ~{keys.LIFECYCLE_KEY}",
            f"%R~{keys.SHADOW_STREAM} %R~{keys.REPLICAS_HASH}",
            # The shadow group is created when a challenger is set and destroyed when none is.
            f"(+xgroup|create +xgroup|destroy +exists ~{keys.PREDICT_STREAM})",
        ]
    ),
    # The metrics exporter and `pokewatch top`: stream and group figures, heartbeats, run records; read-only.
    "monitor": " ".join(
        [
            CONNECT,
            "+xinfo|groups +xinfo|stream +xinfo|consumers +xpending +xlen +xrevrange +xrange +hgetall",
            "+get",
            " ".join(f"%R~{stream}" for stream in keys.STREAMS),
            f"%R~{keys.REPLICAS_HASH} %R~{keys.LIFECYCLE_KEY}",
        ]
    ),
    # KEDA's redis-streams scaler: reads the groups' lag and pending counts, nothing else.
    "scaler": " ".join(
        [CONNECT, "+xinfo|groups +xinfo|stream +xpending +xlen", f"%R~{keys.PREDICT_STREAM} %R~{keys.QUOTES_STREAM}"]
    ),
    "admin": "+@all ~* &*",
}


def placeholder(role: str) -> str:
    """The stand-in for a role's password in shipped files, replaced at deploy time."""
    return "${" + f"REDIS_{role.upper()}_PASSWORD" + "}"


def acl_file(passwords: dict[str, str] | None = None) -> str:
    """The users as an ACL file, the password-less default user disabled.

    Args:
        passwords: per role; missing roles get `placeholder(role)`.
    """
    passwords = passwords or {}
    # No comments: a server refuses an ACL file with any line not starting with `user`.
    lines = ["user default off resetkeys resetchannels -@all"]
    for role, rules in ROLE_RULES.items():
        base = "" if rules.startswith("+@all") else "-@all "
        secret = passwords.get(role, placeholder(role))
        lines.append(f"user {role} on >{secret} resetkeys resetchannels {base}{rules}")
    return "\n".join(lines) + "\n"
