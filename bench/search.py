"""Message search on a large database: the search's queries timed (p50/p99), and a send with and
without the index.

Fills a database of its own with `--messages` messages (default 1,000,000) in `--chats` groups
(default 1,000), the searching user a member of `--member-of` of them (default 200), each group with
three other members; texts are 3-10 words drawn from English, Russian, accented Latin and Japanese
phrases (a few with an image's file name), so 3-character, CJK and common-word queries all hit.
Rows go in by bulk inserts (executemany, 5,000 a transaction), then the index is built once by
`chats.search.rebuild` (what migration 0006 does on an existing database).

Then, in this process, for each kind of query (`--queries` of each, default 200):

- `3-char`: three characters taken from a random stored text (so it exists);
- `cjk`: three or four characters of a Japanese phrase;
- `common-word`: a frequent word (hello, meeting, привет, café ...);
- `rare-phrase`: twelve characters taken from a random stored text (few hits: the worst kind for
  the trigram walk, which must pass over the postings of its rarest trigram to fill a page);

it times `selectors.message_search` for the searching user over all their chats, 50 a page (the
endpoint's queries: their chat ids, the rarest trigram on MariaDB, the matching ids, the rows with
senders and attachments) plus rendering the page (`serializers.message_data`). Every time counts,
the first included.

A send is `services.message_create` in one of the user's chats (its transaction, commit and event
rendering; the in-memory channel layer), `--sends` times with the index and as many without (the
background indexer off), taking turns by 25 so both see the same machine (`time_sends`). Reported: the
per-send ratios, `indexed_ratio` (the with-index turns' time plus the indexer's batches' time, against the
turns without: sending and indexing every message) and `drained_ratio` (the with-index turns until the
indexer is done, its 200 ms gathering delay included: an upper bound).

    python -m bench.search --backend sqlite --messages 1000000 --out /tmp/search-sqlite.json
    python -m bench.search --backend mysql --database-url mysql://root@127.0.0.1:3306/ --messages 1000000

The MariaDB database is `msg_search_bench` (created, and dropped at the end unless `--keep`); the
SQLite one is a file in a temporary directory, removed at the end.
"""

import argparse
import json
import os
import random
import secrets
import shutil
import statistics
import tempfile
import time
from typing import Any
from urllib.parse import urlparse

BENCH_DATABASE = "msg_search_bench"
BATCH = 5000

ENGLISH = [
    "hello",
    "meeting",
    "tomorrow",
    "report",
    "budget",
    "project",
    "deadline",
    "coffee",
    "lunch",
    "review",
    "design",
    "release",
    "the",
    "and",
    "with",
    "for",
    "from",
    "about",
    "please",
    "thanks",
    "morning",
    "evening",
    "weekend",
    "holiday",
    "travel",
    "ticket",
    "airport",
    "station",
    "hotel",
    "dinner",
    "birthday",
    "present",
    "payment",
    "invoice",
    "contract",
    "customer",
    "server",
    "database",
    "network",
    "update",
    "upgrade",
    "question",
    "answer",
    "problem",
    "solution",
    "idea",
    "plan",
    "schedule",
    "calendar",
    "office",
    "window",
    "garden",
    "music",
    "movie",
    "picture",
    "document",
    "spreadsheet",
    "presentation",
]
RUSSIAN = [
    "привет",
    "встреча",
    "завтра",
    "отчёт",
    "бюджет",
    "проект",
    "обед",
    "кофе",
    "спасибо",
    "пожалуйста",
    "вечер",
    "поезд",
    "билет",
]
ACCENTED = ["café", "naïve", "résumé", "déjà", "crème", "brûlée", "façade", "señor", "über", "straße"]
JAPANESE = [
    "東京タワー",
    "京都の寺",
    "新幹線の切符",
    "会議は明日です",
    "ありがとうございます",
    "お疲れ様です",
    "大阪城",
    "富士山に登る",
    "日本語の勉強",
    "ラーメン屋",
]
FILE_NAMES = ["holiday-photo.jpg", "Quarterly_Report.png", "スクリーンショット.png", "счёт-фактура.png"]
COMMON_WORDS = ["hello", "meeting", "привет", "café", "project", "tomorrow", "спасибо", "report"]


def text(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randint(3, 10)):
        pick = rng.random()
        if pick < 0.70:
            words.append(rng.choice(ENGLISH))
        elif pick < 0.82:
            words.append(rng.choice(RUSSIAN))
        elif pick < 0.90:
            words.append(rng.choice(ACCENTED))
        else:
            words.append(rng.choice(JAPANESE))
    return " ".join(words)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "n": len(ordered),
        "p50_ms": round(at(0.50) * 1000, 2),
        "p99_ms": round(at(0.99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


def configure(args: argparse.Namespace) -> str | None:
    """Environment for messenger.settings: the bench's own database. Returns a temp dir to remove."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "messenger.settings"
    os.environ["DEBUG"] = "false"
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
    os.environ.pop("REDIS_URL", None)
    # The index build's statements (a batch of postings, the trigram key made at the end) outlast the
    # server's per-statement limits, which are for requests.
    os.environ["DATABASE_STATEMENT_SECONDS"] = "0"
    os.environ["DATABASE_READ_TIMEOUT"] = "0"
    os.environ["DATABASE_WRITE_TIMEOUT"] = "0"
    data_dir = tempfile.mkdtemp(prefix="search-bench-")
    os.environ["DATA_DIR"] = data_dir
    if args.backend == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    else:
        import MySQLdb

        url = urlparse(args.database_url)
        server = MySQLdb.connect(
            host=url.hostname or "127.0.0.1",
            port=url.port or 3306,
            user=url.username or "root",
            passwd=url.password or "",
        )
        if not args.reuse:
            server.cursor().execute(f"DROP DATABASE IF EXISTS {args.database}")
            server.cursor().execute(f"CREATE DATABASE {args.database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        server.close()
        os.environ["DATABASE_URL"] = url._replace(path=f"/{args.database}").geturl()
    return data_dir


def fill(args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from chats.models import Chat, ChatUser, Message
    from media.models import Attachment, Blob

    started = time.monotonic()
    password = make_password(secrets.token_urlsafe(12))
    users = User.objects.bulk_create(
        [User(username=f"searcher{n}" if n == 0 else f"user{n}", password=password) for n in range(60)]
    )
    searcher, others = users[0], users[1:]
    chats = Chat.objects.bulk_create([Chat(is_group=True, title=f"group {n}") for n in range(args.chats)])
    mine = set(rng.sample(range(args.chats), args.member_of))
    memberships = []
    senders: dict[int, list[int]] = {}
    for n, chat in enumerate(chats):
        members = rng.sample(others, 3) + ([searcher] if n in mine else [])
        senders[chat.pk] = [m.pk for m in members]
        memberships += [ChatUser(chat=chat, user=m, role=ChatUser.Role.MEMBER) for m in members]
    ChatUser.objects.bulk_create(memberships, batch_size=BATCH)
    blob = Blob.objects.create(sha256="0" * 64, size=1, content_type="image/png", width=1, height=1)
    attachments = Attachment.objects.bulk_create(
        [Attachment(blob=blob, uploader=others[0], original_name=name) for name in FILE_NAMES]
    )

    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    insert = f"INSERT INTO {connection.ops.quote_name(Message._meta.db_table)} ({columns}) VALUES ({marks})"
    versions = dict.fromkeys(senders, 0)
    chat_ids = list(senders)
    now = timezone.now()
    written = 0
    while written < args.messages:
        rows = []
        for _ in range(min(BATCH, args.messages - written)):
            chat_id = chat_ids[written % len(chat_ids)]
            versions[chat_id] += 1
            attachment = rng.choice(attachments) if rng.random() < 0.02 else None
            message = Message(
                chat_id=chat_id,
                sender_id=rng.choice(senders[chat_id]),
                content=text(rng),
                attachment=attachment,
                created_at=now,
                version=versions[chat_id],
            )
            rows.append([f.get_db_prep_save(f.pre_save(message, True), connection) for f in fields])
            written += 1
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(insert, rows)
    for chat_id, version in versions.items():
        Chat.objects.filter(pk=chat_id).update(version=version)
    filled = time.monotonic() - started
    return {
        "messages": written,
        "chats": args.chats,
        "member_of": args.member_of,
        "fill_seconds": round(filled, 1),
        **build_index(),
        "searcher_id": searcher.pk,
        "searcher_chats": sorted(chats[n].pk for n in mine),
    }


def build_index() -> dict[str, Any]:
    """The index built from the messages once (what migration 0006 does), then fresh statistics."""
    from django.db import connection

    from chats import search

    started = time.monotonic()
    search.drop_schema(connection)  # made again as migration 0006 makes it
    search.create_schema(connection)
    indexed = search.rebuild(rekey=True)  # autocommit, a statement a batch: no million-row transaction
    # Fresh statistics, as a database in service has them: without them MariaDB may read a page's
    # rows starting from the (small) users table (measured: 20 ms instead of 1 ms at 100,000 rows).
    tables = ["chats_message", "accounts_user", "chats_chatuser", "chats_chat", "media_attachment"]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("ANALYZE")
        else:
            indexes = [search.TRIGRAM_TABLE, search.TEXT_TABLE, search.COUNT_TABLE, search.STATE_TABLE]
            cursor.execute(f"ANALYZE TABLE {', '.join([*tables, *indexes])}")
            cursor.fetchall()
    return {"index_seconds": round(time.monotonic() - started, 1), "indexed": indexed}


def reused(args: argparse.Namespace) -> dict[str, Any]:
    """What `fill` returns, read from a database an earlier run filled and kept."""
    from accounts.models import User
    from chats.models import Chat, ChatUser, Message

    searcher = User.objects.get(username="searcher0")
    mine = sorted(ChatUser.objects.filter(user=searcher).values_list("chat_id", flat=True))
    return {
        "messages": Message.objects.count(),
        "chats": Chat.objects.count(),
        "member_of": len(mine),
        "reused": True,
        **(build_index() if args.reindex else {}),
        "searcher_id": searcher.pk,
        "searcher_chats": mine,
    }


def queries(kind: str, rng: random.Random, samples: list[str]) -> str:
    from chats import search

    while True:
        if kind == "3-char":
            source = search.fold(rng.choice(samples))
            start = rng.randrange(max(1, len(source) - 3))
            q = source[start : start + 3]
        elif kind == "cjk":
            phrase = rng.choice(JAPANESE)
            size = min(len(phrase), rng.choice([3, 4]))
            start = rng.randrange(len(phrase) - size + 1)
            q = phrase[start : start + size]
        elif kind == "common-word":
            q = rng.choice(COMMON_WORDS)
        else:
            source = search.fold(rng.choice(samples))
            if len(source) < 12:
                continue
            start = rng.randrange(len(source) - 11)
            q = source[start : start + 12]
        q = search.fold(q)
        if len(q) >= search.MIN_QUERY_LENGTH:
            return q


def time_searches(args: argparse.Namespace, rng: random.Random, info: dict[str, Any]) -> dict[str, Any]:
    from accounts.models import User
    from chats import selectors
    from chats.models import Message
    from chats.serializers import message_data

    user = User.objects.get(pk=info["searcher_id"])
    mine = info["searcher_chats"]
    samples = list(
        Message.objects.filter(chat_id__in=rng.sample(mine, 20)).order_by("?").values_list("content", flat=True)[:2000]
    )
    out: dict[str, Any] = {}
    for kind in ("3-char", "cjk", "common-word", "rare-phrase"):
        times, hits = [], []
        for _ in range(args.queries):
            q = queries(kind, rng, samples)
            started = time.perf_counter()
            page = selectors.message_search(user=user, query=q, limit=50)
            [message_data(m, online_ids=set()) for m in page.results]
            times.append(time.perf_counter() - started)
            hits.append(len(page.results))
        out[kind] = {**percentiles(times), "mean_hits": round(statistics.fmean(hits), 1)}
        print(f"  {kind:12} {out[kind]}", flush=True)
    return out


def time_sends(args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    """Sends with the background indexer on (it indexes each turn's messages while the next are
    sent, in this process: its CPU and the GIL weigh on the sends) and off (nothing indexed).
    Between turns, untimed, the index is brought up to date (`drained`: the with-index turns' time
    including the wait for the indexer to finish, i.e. send + index of every message)."""
    from django.conf import settings

    from accounts.models import User
    from chats import search, services

    user = User.objects.get(pk=info["searcher_id"])
    chats = info["searcher_chats"]
    timed: dict[str, list[float]] = {"with_index": [], "without_index": []}
    turns: dict[str, float] = {"with_index": 0.0, "without_index": 0.0, "drained": 0.0}
    busy, batches = search.indexer.busy_seconds, search.indexer.batches
    rng = random.Random(7)
    sent = 0
    while sent < 2 * args.sends:
        for mode in ("with_index", "without_index"):
            settings.SEARCH_INDEX_IN_BACKGROUND = mode == "with_index"
            turn_started = time.perf_counter()
            for _ in range(25):
                content = text(rng)
                started = time.perf_counter()
                services.message_create(chat_id=rng.choice(chats), sender=user, content=content)
                timed[mode].append(time.perf_counter() - started)
                sent += 1
            turns[mode] += time.perf_counter() - turn_started
            if mode == "with_index":
                if not search.indexer.wait_idle(timeout=60):
                    raise RuntimeError("the search indexer did not finish a turn's 25 messages in 60 s")
                turns["drained"] += time.perf_counter() - turn_started
            else:
                search.catch_up(chats)  # untimed: the next turn's indexer starts from an index up to date
    settings.SEARCH_INDEX_IN_BACKGROUND = True
    out: dict[str, Any] = {mode: percentiles(samples) for mode, samples in timed.items()}
    out["mean_ratio"] = round(out["with_index"]["mean_ms"] / out["without_index"]["mean_ms"], 2)
    out["p50_ratio"] = round(out["with_index"]["p50_ms"] / out["without_index"]["p50_ms"], 2)
    out["drained_ratio"] = round(turns["drained"] / turns["without_index"], 2)
    # The indexer's own time (its batches' wall time, in this process) added to the sends': what a
    # message costs sent and indexed, without the gathering delay `drained` also waits out.
    busy = search.indexer.busy_seconds - busy
    out["indexer"] = {"batches": search.indexer.batches - batches, "seconds": round(busy, 2)}
    out["indexed_ratio"] = round((turns["with_index"] + busy) / turns["without_index"], 2)
    print(f"  sends {out}", flush=True)
    return out


def index_size() -> dict[str, Any]:
    from django.db import connection

    from chats import search

    if connection.vendor == "sqlite":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, table_rows, ROUND((data_length + index_length) / 1048576) "
            "FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN (%s, %s, %s)",
            [search.TRIGRAM_TABLE, search.TEXT_TABLE, "chats_message"],
        )
        return {name: {"rows_estimate": rows, "mb": float(mb)} for name, rows, mb in cursor.fetchall()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "mysql"], required=True)
    parser.add_argument("--database-url", default="mysql://root@127.0.0.1:3306/")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--member-of", type=int, default=200)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sends", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the MariaDB database")
    parser.add_argument("--database", default=BENCH_DATABASE, help="the MariaDB database's name")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="MariaDB: time the searches and sends on a database kept (--keep) by an earlier run, as it is",
    )
    parser.add_argument("--reindex", action="store_true", help="with --reuse: build the index again first")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    data_dir = configure(args)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        rng = random.Random(42)
        print(f"{args.backend}: filling {args.messages:,} messages in {args.chats:,} chats", flush=True)
        info = reused(args) if args.reuse else fill(args, rng)
        print(f"  filled in {info.get('fill_seconds')} s, indexed in {info.get('index_seconds')} s", flush=True)
        results = {
            "backend": args.backend,
            "database": connection.vendor,
            **{k: v for k, v in info.items() if k != "searcher_chats"},
            "searches": time_searches(args, rng, info),
            "sends": time_sends(args, info),
            "sizes": index_size(),
        }
        print(json.dumps(results, indent=2))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(results, f, indent=2)
        connection.close()
    finally:
        if args.backend == "mysql" and not (args.keep or args.reuse):
            import MySQLdb

            url = urlparse(args.database_url)
            server = MySQLdb.connect(
                host=url.hostname or "127.0.0.1",
                port=url.port or 3306,
                user=url.username or "root",
                passwd=url.password or "",
            )
            server.cursor().execute(f"DROP DATABASE IF EXISTS {args.database}")
            server.close()
        if data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
