"""Settings come from the environment: strict booleans, SECRET_KEY required without DEBUG, an embedded
default with nothing set. Start-up cases run `import messenger.settings` in a fresh interpreter with a
clean environment, as a server would start."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from messenger import settings as project_settings

BASE_DIR = Path(project_settings.BASE_DIR)


def start(tmp_path, code: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a new interpreter whose environment holds only PATH, DATA_DIR and `env`."""
    clean = {"PATH": os.environ.get("PATH", ""), "DATA_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "-c", "import json\nimport messenger.settings as s\n" + code],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_without_secret_key_and_without_debug_is_refused_with_a_clear_message(tmp_path):
    # when
    result = start(tmp_path)
    # then
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_start_with_a_secret_key_runs_without_debug(tmp_path):
    # when
    result = start(tmp_path, "print(json.dumps([s.DEBUG, s.SECRET_KEY]))", SECRET_KEY="k" * 50).stdout
    # then
    assert json.loads(result.splitlines()[-1]) == [False, "k" * 50]


def test_start_in_debug_without_secret_key_generates_one_and_keeps_it(tmp_path):
    # when
    first = start(tmp_path, "print(s.SECRET_KEY)", DEBUG="true")
    second = start(tmp_path, "print(s.SECRET_KEY)", DEBUG="true")
    # then
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) > 50
    assert second.stdout.strip() == key
    assert (tmp_path / "dev-secret-key").read_text().strip() == key


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "tru"])
def test_start_with_a_debug_value_that_is_not_a_boolean_is_refused(tmp_path, value):
    # when
    result = start(tmp_path, SECRET_KEY="k" * 50, DEBUG=value)
    # then
    assert result.returncode != 0
    assert f"DEBUG={value!r} is not a boolean" in result.stderr


def test_start_with_nothing_set_is_the_embedded_default(tmp_path):
    # when
    result = start(
        tmp_path,
        "print(json.dumps([s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND']]))",
        DEBUG="true",
    )
    # then
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [
        "django.db.backends.sqlite3",
        "chats.realtime.adapter.SweepingInMemoryChannelLayer",
    ]


def test_start_with_database_and_redis_urls_uses_mysql_and_redis(tmp_path):
    # when
    result = start(
        tmp_path,
        "print(json.dumps([s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'],"
        " s.CACHES['default']['BACKEND']]))",
        DEBUG="true",
        DATABASE_URL="mysql://u:p@db.example:3307/messenger",
        REDIS_URL="redis://cache.example:6379/0",
    )
    # then
    assert result.returncode == 0, result.stderr
    engine, layer, cache = json.loads(result.stdout.splitlines()[-1])
    assert engine == "django.db.backends.mysql"
    assert layer == "chats.realtime.adapter.BatchedRedisPubSubChannelLayer"
    assert cache == "messenger.cache.FallbackRedisCache"


def test_without_debug_no_host_is_allowed_unless_configured(tmp_path):
    # when
    result = start(tmp_path, "print(json.dumps([s.DEBUG, s.ALLOWED_HOSTS]))", SECRET_KEY="k" * 50)
    # then
    assert json.loads(result.stdout.splitlines()[-1]) == [False, []]


# Parsing, in process -----------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", "on", " true "])
def test_env_bool_reads_true(monkeypatch, raw):
    # given
    monkeypatch.setenv("SOME_FLAG", raw)
    # then
    assert project_settings.env_bool("SOME_FLAG", default=False) is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "NO", "off"])
def test_env_bool_reads_false(monkeypatch, raw):
    # given
    monkeypatch.setenv("SOME_FLAG", raw)
    # then
    assert project_settings.env_bool("SOME_FLAG", default=True) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "y", "nope", "truee"])
def test_env_bool_refuses_an_unknown_value(monkeypatch, raw):
    # given
    monkeypatch.setenv("SOME_FLAG", raw)
    # when / then
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        project_settings.env_bool("SOME_FLAG", default=False)


@pytest.mark.parametrize("default", [True, False])
def test_env_bool_falls_back_to_the_default_when_unset_or_empty(monkeypatch, default):
    # given
    monkeypatch.delenv("SOME_FLAG", raising=False)
    # then
    assert project_settings.env_bool("SOME_FLAG", default=default) is default
    monkeypatch.setenv("SOME_FLAG", "")
    assert project_settings.env_bool("SOME_FLAG", default=default) is default


def test_env_int_refuses_a_non_integer(monkeypatch):
    # given
    monkeypatch.setenv("SOME_NUMBER", "ten")
    # when / then
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER"):
        project_settings.env_int("SOME_NUMBER", 10)


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    # given
    monkeypatch.setenv("SOME_LIST", " a.example , ,b.example,")
    # then
    assert project_settings.env_list("SOME_LIST", []) == ["a.example", "b.example"]


def test_database_url_becomes_a_utf8mb4_mysql_connection_with_persistent_connections():
    # when
    database = project_settings.database_from_url("mysql://user:p%40ss@db.example:3307/messenger?ssl_mode=REQUIRED")
    # then
    assert database["ENGINE"] == "django.db.backends.mysql"
    assert (database["NAME"], database["USER"], database["PASSWORD"]) == ("messenger", "user", "p@ss")
    assert (database["HOST"], database["PORT"]) == ("db.example", "3307")
    options = database["OPTIONS"]
    assert isinstance(options, dict)
    assert options["charset"] == "utf8mb4"
    assert options["ssl_mode"] == "REQUIRED"
    assert database["CONN_HEALTH_CHECKS"] is True
    assert isinstance(database["CONN_MAX_AGE"], int)
    assert database["CONN_MAX_AGE"] > 0


def test_database_url_with_another_scheme_is_refused():
    # when / then
    with pytest.raises(ImproperlyConfigured, match="postgres"):
        project_settings.database_from_url("postgres://u@h/db")


def test_database_url_connections_time_out_instead_of_hanging(monkeypatch):
    # given
    monkeypatch.setenv("DATABASE_STATEMENT_SECONDS", "7")
    # when
    options = project_settings.database_from_url("mysql://u@h/db")["OPTIONS"]
    # then: mysqlclient's timeouts, and MariaDB's statement limit in a comment MySQL ignores
    assert isinstance(options, dict)
    assert (options["connect_timeout"], options["read_timeout"], options["write_timeout"]) == (3, 6, 6)
    assert options["init_command"] == "SET sql_mode='STRICT_TRANS_TABLES' /*M!, SESSION max_statement_time=7 */"


def test_a_statement_limit_of_zero_sets_none(monkeypatch):
    monkeypatch.setenv("DATABASE_STATEMENT_SECONDS", "0")
    options = project_settings.database_from_url("mysql://u@h/db")["OPTIONS"]
    assert isinstance(options, dict)
    assert options["init_command"] == "SET sql_mode='STRICT_TRANS_TABLES'"


@pytest.mark.mysql
@pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="needs MariaDB (DATABASE_URL)")
@pytest.mark.django_db
def test_a_statement_over_the_limit_is_stopped_by_mariadb_and_answered_503(api_client, monkeypatch):
    # given: the server's session limit, and a view whose query runs longer than it
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.max_statement_time")
        assert cursor.fetchone() == (5.0,)
        cursor.execute("SET SESSION max_statement_time = 0.2")

    from chats import views

    def slow_list(self, request, *args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT SLEEP(3)")
        raise AssertionError("not stopped")

    monkeypatch.setattr(views.ChatViewSet, "list", slow_list)
    # when
    r = api_client.get("/api/chats")
    # then
    assert r.status_code == 503, r.content
    assert r["Retry-After"] == "5"


def test_the_generated_secret_key_and_the_sqlite_database_are_private_to_the_server(tmp_path):
    # when: a development start that writes to its database, and reads the modes while it is open
    code = (
        "import django, os\ndjango.setup()\nfrom django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('CREATE TABLE t (x int)')\n    c.execute('INSERT INTO t VALUES (1)')\n"
        "print(json.dumps({f: os.stat(s.DATA_DIR / f).st_mode & 0o777 for f in os.listdir(s.DATA_DIR)"
        " if f.startswith(('messenger', 'dev-'))}))"
    )
    result = start(tmp_path, code, DEBUG="true", DJANGO_SETTINGS_MODULE="messenger.settings")
    # then: the key, the database and its WAL files are 0600
    assert result.returncode == 0, result.stderr
    modes = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"dev-secret-key", "messenger.sqlite3", "messenger.sqlite3-wal", "messenger.sqlite3-shm"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o600)


def test_a_looser_existing_database_file_is_made_private(tmp_path):
    # given: a database file from before, readable by all
    database = tmp_path / "messenger.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    # when
    result = start(tmp_path, DEBUG="true")
    # then
    assert result.returncode == 0, result.stderr
    assert database.stat().st_mode & 0o777 == 0o600


def test_start_with_an_unknown_media_storage_is_refused(tmp_path):
    # when
    result = start(tmp_path, SECRET_KEY="k" * 50, MEDIA_STORAGE="ftp")
    # then
    assert result.returncode != 0
    assert "MEDIA_STORAGE='ftp' is not a storage" in result.stderr


def test_start_with_s3_media_and_no_bucket_is_refused(tmp_path):
    # when
    result = start(tmp_path, SECRET_KEY="k" * 50, MEDIA_STORAGE="s3")
    # then
    assert result.returncode != 0
    assert "MEDIA_STORAGE=s3 needs S3_BUCKET" in result.stderr


def test_start_with_s3_media_on_an_endpoint_addresses_the_bucket_by_path(tmp_path):
    # when
    code = "print(json.dumps([s.MEDIA_STORAGE, s.S3_BUCKET, s.S3_ADDRESSING_STYLE]))"
    env = {"MEDIA_STORAGE": "s3", "S3_BUCKET": "media", "S3_ENDPOINT_URL": "http://127.0.0.1:9000"}
    result = start(tmp_path, code, SECRET_KEY="k" * 50, **env)
    # then
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == ["s3", "media", "path"]
