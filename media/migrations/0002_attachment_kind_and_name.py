from django.db import migrations, models


def names_made_safe(apps, schema_editor):
    """Every upload so far was an image: its `name` is its original name made safe."""
    from media.names import safe_name

    Attachment = apps.get_model("media", "Attachment")
    for attachment in Attachment.objects.exclude(original_name="").only("pk", "original_name").iterator():
        Attachment.objects.filter(pk=attachment.pk).update(name=safe_name(attachment.original_name))


class Migration(migrations.Migration):
    dependencies = [
        ("media", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="attachment",
            name="kind",
            field=models.CharField(choices=[("image", "Image"), ("file", "File")], default="image", max_length=8),
        ),
        migrations.AddField(
            model_name="attachment",
            name="name",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AlterField(
            model_name="blob",
            name="height",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="blob",
            name="width",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(names_made_safe, migrations.RunPython.noop),
    ]
