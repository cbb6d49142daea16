"""What one `user.updated` costs the server for a user in 200 chats of 1,000 members (issue 14 follow-up).

    .venv/bin/python -m bench.user_updated [--chats 200] [--members 1000] [--repeat 3]

In a throwaway test database of the configured kind (DATABASE_URL, or the embedded SQLite), and
through the configured channel layer (REDIS_URL, or the in-memory one), two shapes:

- `shared`: the same 999 others in every chat (999 distinct peers, 200,000 memberships read);
- `distinct`: 999 others of their own in each chat (199,800 distinct peers).

For each: the queries of rendering the event (read_committed + the renderer), how many envelopes
(the user's chats and own group, one nonce: each router delivers it once per socket) and distinct
texts it makes, its wall time (median of --repeat), and the time to publish the envelopes (no
socket listens: the layer's own cost). Nothing here is asserted: the bounds are in
tests/realtime/test_user_updated.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messenger.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        for shape in ("shared", "distinct"):
            print(measure(shape, args.chats, args.members, min(args.repeat, 10)))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def measure(shape: str, chats: int, members: int, repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from chats.models import Chat, ChatUser
    from chats.realtime import envelopes, events, outbox, render

    prefix = f"{shape}-{time.monotonic_ns()}"
    others_needed = members - 1 if shape == "shared" else chats * (members - 1)
    user = User.objects.create(username=f"{prefix}-u", display_name="Bench")
    User.objects.bulk_create(
        [User(username=f"{prefix}-{n}", password="!") for n in range(others_needed)], batch_size=2000
    )
    named = User.objects.filter(username__startswith=f"{prefix}-").exclude(pk=user.pk)
    others = list(named.values_list("pk", flat=True))
    rows = Chat.objects.bulk_create([Chat(is_group=True, title=f"c{n}") for n in range(chats)])
    chat_ids = [chat.pk for chat in rows]  # bulk_create returns the ids on SQLite and MariaDB (RETURNING)
    assert all(chat_ids)
    memberships = []
    for index, chat_id in enumerate(chat_ids):
        memberships.append(ChatUser(chat_id=chat_id, user_id=user.pk, role="owner"))
        mine = others if shape == "shared" else others[index * (members - 1) : (index + 1) * (members - 1)]
        memberships += [ChatUser(chat_id=chat_id, user_id=other) for other in mine]
    ChatUser.objects.bulk_create(memberships, batch_size=5000)

    renders, publishes, queries, made, texts = [], [], 0, 0, 0
    for _ in range(repeat):
        entry = outbox.Entry(events.UserUpdated(user.pk))
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            out = render.render_entries([entry])
            renders.append(time.perf_counter() - started)
        queries, made, texts = len(captured), len(out), len({id(message["text"]) for _, message in out})
        started = time.perf_counter()
        envelopes.publish_from_thread(out)
        publishes.append(time.perf_counter() - started)
    return {
        "shape": shape,
        "chats": chats,
        "members": members,
        "memberships": len(memberships),
        "queries": queries,
        "envelopes": made,
        "distinct_texts": texts,
        "render_ms": round(statistics.median(renders) * 1000, 1),
        "publish_ms": round(statistics.median(publishes) * 1000, 1),
    }


if __name__ == "__main__":
    main()
