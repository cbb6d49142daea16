"""Seed the fault suite's users and chats (run as a subprocess with the messenger's settings).

    DJANGO_SETTINGS_MODULE=messenger.settings python -m faults.seed --out seed.json

Six users in two groups and three direct chats, so that every member of a chat is also in
another one: events of several chats reach each socket on /ws/, as in the shipped client.
The rows are written with bench.seed's helpers (what the services would have left behind).
"""

import argparse
import json

from bench.seed import group, token, users  # sets Django up
from chats.models import Chat, ChatUser

USERS = 6
# (title, member indexes: owner first) for groups; pairs for direct chats. The second group is
# the suite's one-way chat that falls quiet after each fault (faults/load.py).
GROUPS = (("faults group A", (0, 1, 2, 3)), ("faults group B", (2, 3, 4, 5)))
DIRECT = ((0, 1), (2, 3), (4, 5))


def main() -> None:
    parser = argparse.ArgumentParser(description="Seed the fault suite's users and chats.")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    people = users("flt", USERS)
    chats: list[dict[str, object]] = []
    for title, indexes in GROUPS:
        members = [people[i] for i in indexes]
        chat = group(title, members[0], members[1:])
        chats.append({"id": chat.pk, "members": [u.pk for u in members]})
    for a, b in DIRECT:
        low, high = sorted((people[a].pk, people[b].pk))
        chat = Chat.objects.create(is_group=False, title=None, direct_key=f"{low}:{high}")
        ChatUser.objects.bulk_create([ChatUser(chat=chat, user=people[a]), ChatUser(chat=chat, user=people[b])])
        chats.append({"id": chat.pk, "members": [people[a].pk, people[b].pk]})
    seeded = {"users": [{"id": u.pk, "token": token(u)} for u in people], "chats": chats}
    with open(args.out, "w") as out:
        json.dump(seeded, out)


if __name__ == "__main__":
    main()
