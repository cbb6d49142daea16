"""media 0002: uploads recorded before Attachment.name get their original name made safe."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("media", "0001_initial")]
AFTER = [("media", "0002_attachment_kind_and_name")]


@pytest.mark.django_db(transaction=True)
def test_existing_uploads_get_their_name_made_safe_and_stay_images(user):
    # given: the schema before names, with an upload under a hostile name
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = executor.loader.project_state(BEFORE).apps
    Blob = old_apps.get_model("media", "Blob")
    Attachment = old_apps.get_model("media", "Attachment")
    blob = Blob.objects.create(sha256="a" * 64, size=10, content_type="image/png", width=1, height=1)
    attachment = Attachment.objects.create(blob=blob, uploader_id=user.pk, original_name="..\\x/\u202eevil\r\n.png")
    try:
        # when
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(AFTER)
        # then
        new_apps = executor.loader.project_state(AFTER).apps
        migrated = new_apps.get_model("media", "Attachment").objects.get(pk=attachment.pk)
        assert (migrated.name, migrated.kind, migrated.original_name) == (
            "evil .png",
            "image",
            attachment.original_name,
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
