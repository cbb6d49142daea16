"""The message search index (chats/search.py): an FTS5 trigram table on SQLite, a trigram table and
the folded documents on MariaDB/MySQL. Raw SQL, per vendor: neither is a Django model. Messages
already stored are indexed here."""

from django.db import migrations


def create_index(apps, schema_editor):
    from chats import search

    connection = schema_editor.connection
    if connection.vendor not in {"sqlite", "mysql"}:
        return
    search.create_schema(connection)  # filled by 0006, which makes it again in its current shape


def drop_index(apps, schema_editor):
    from chats import search

    if schema_editor.connection.vendor in {"sqlite", "mysql"}:
        search.drop_schema(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("chats", "0003_client_id_per_chat"),
        ("media", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_index, drop_index)]
