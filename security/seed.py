"""Seed the security suite's users and chats (run as a subprocess with the messenger's settings).

    DJANGO_SETTINGS_MODULE=messenger.settings python -m security.seed --out seed.json

Users sec0 … sec4, reached with minted tokens: sec0 floods group "flood" (with sec1); sec2 and
sec3 share group "measured" (sec2's send→ack is timed while sec0 floods; sec3 is the contact whose
presence sec2 may see); sec4 shares no chat with anyone (the stranger, and the uploader). Two
accounts with a real password are the targets of the login cases: secvictim (the API's login)
and secadmin (staff: the admin's login). Rows are written with bench.seed's helpers.
"""

import argparse
import json

from bench.seed import User, group, token, users  # sets Django up

PASSWORD = "right-horse-battery-staple-7"


def main() -> None:
    parser = argparse.ArgumentParser(description="Seed the security suite's users and chats.")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    people = users("sec", 5)
    flood = group("flood", people[0], [people[1]])
    measured = group("measured", people[2], [people[3]])
    for username, staff in (("secvictim", False), ("secadmin", True)):
        User.objects.create_user(
            username=username, email=f"{username}@security.invalid", password=PASSWORD, is_staff=staff
        )
    seeded = {
        "users": [{"id": u.pk, "username": u.username, "token": token(u)} for u in people],
        "flood_chat": flood.pk,
        "measured_chat": measured.pk,
        "password": PASSWORD,
    }
    with open(args.out, "w") as out:
        json.dump(seeded, out)


if __name__ == "__main__":
    main()
