"""Count the SQL queries of each REST request of the bench, with Django's test Client.

    DJANGO_SETTINGS_MODULE=messenger.settings python -m bench.rest_queries --seed seed.json --out q.json

Each request is made once to warm caches (content types, the token's user), then counted.
"""

import argparse
import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messenger.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.rest import requests_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.seed) as seed_file:
        seed = json.load(seed_file)
    client = Client()
    counts: dict[str, int] = {}
    for name, (path, token) in requests_for(seed).items():
        headers = {"Authorization": f"Bearer {token}"}
        client.get(path, headers=headers)
        with CaptureQueriesContext(connection) as captured:
            answer = client.get(path, headers=headers)
        if answer.status_code != 200:
            raise SystemExit(f"GET {path} answered {answer.status_code}: {answer.content[:200]!r}")
        counts[name] = len(captured.captured_queries)
    with open(args.out, "w") as out:
        json.dump(counts, out)


if __name__ == "__main__":
    main()
