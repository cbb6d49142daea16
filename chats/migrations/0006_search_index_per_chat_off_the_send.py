"""The message search index made again in its current shape (chats/search.py) and filled from the
messages: on MariaDB the postings keyed (trigram, chat_id, message_id) so that a search reads only
the caller's chats, and the postings counts of each trigram (a query walks its rarest); on both, the
per-chat marks of what is indexed (`chats_search_state`), since the index is now written after the
commit by the background indexer, not in the send's transaction. A database of 1,000,000 messages
takes about as long as migration 0004 took to fill it (bench/README.md, "Message search")."""

from django.db import migrations


def remake_index(apps, schema_editor):
    from chats import search

    connection = schema_editor.connection
    if connection.vendor not in {"sqlite", "mysql"}:
        return
    search.drop_schema(connection)
    search.create_schema(connection)
    search.rebuild(connection, rekey=True)


class Migration(migrations.Migration):
    dependencies = [
        ("chats", "0005_merge_0004_conversation_features_0004_message_search"),
    ]

    # Backwards leaves the index in its current shape: migration 0004's reverse drops it.
    operations = [migrations.RunPython(remake_index, migrations.RunPython.noop)]
