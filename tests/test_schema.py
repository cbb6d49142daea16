"""GET /api/schema/ and /api/docs/: the OpenAPI schema, generated from the code, describes the contract."""

import io
import re

import pytest
import yaml
from django.core.management import call_command

# docs/API.md's REST table: path (as written there) -> methods.
CONTRACT = {
    "/api/auth/register": {"post"},
    "/api/auth/login": {"post"},
    "/api/auth/refresh": {"post"},
    "/api/auth/logout": {"post"},
    "/api/auth/me": {"get", "patch"},
    "/api/users/search": {"get"},
    "/api/users/{id}": {"get"},
    "/api/chats": {"get", "post"},
    "/api/chats/{id}": {"get", "patch"},
    "/api/chats/{id}/members": {"post"},
    "/api/chats/{id}/members/{user_id}": {"delete"},
    "/api/chats/{id}/messages": {"get", "post"},
    "/api/chats/{id}/messages/{mid}": {"patch", "delete"},
    "/api/chats/{id}/read": {"post"},
    "/api/chats/{id}/media": {"get"},
    "/api/attachments": {"post"},
    # v1.1 additions
    "/api/search/messages": {"get"},
    "/api/config": {"get"},
    "/api/media": {"get"},
    "/api/auth/me/avatar": {"put", "delete"},
    "/api/avatars/{sha256}": {"get"},
    "/api/chats/{id}/messages/{mid}/reactions/{emoji}": {"put", "delete"},
    "/api/chats/{id}/pins": {"get", "post"},
    "/api/chats/{id}/pins/{mid}": {"delete"},
    "/api/mentions": {"get"},
}


def shape(path: str) -> str:
    """A path with its parameter names blanked: /api/chats/{chat_pk} and /api/chats/{id} are the same route."""
    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.fixture
def schema(client, db):
    r = client.get("/api/schema/", {"format": "json"})
    assert r.status_code == 200, r.content
    return r.json()


def test_schema_is_served_without_a_token(client, db):
    # when
    r = client.get("/api/schema/")
    # then
    assert r.status_code == 200, r.content
    assert yaml.safe_load(r.content)["openapi"].startswith("3.")


def test_schema_shows_the_v1_1_fields_of_message_and_chat(schema):
    components = schema["components"]["schemas"]
    message_fields = {"kind", "system", "reply_to", "forwarded_from", "reactions", "mentions", "pinned", "link_preview"}
    assert message_fields <= set(components["Message"]["properties"])
    assert "muted" in components["Chat"]["properties"]
    assert {"reply_to_id", "forward_of_id"} <= set(components["MessageCreateRequest"]["properties"])


def test_schema_lists_every_path_and_method_of_the_contract(schema):
    # given
    served = {shape(path): set(methods) for path, methods in schema["paths"].items()}
    # then
    for path, methods in CONTRACT.items():
        assert shape(path) in served, f"{path} is missing from the schema"
        assert methods <= served[shape(path)], f"{path}: {methods - served[shape(path)]} missing"


def test_schema_writes_the_paths_as_the_contract_does_without_trailing_slash(schema):
    # then
    assert all(not path.endswith("/") for path in schema["paths"])


def test_schema_documents_bearer_authentication(schema):
    # then
    schemes = schema["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())


def test_schema_documents_the_direct_chat_200_and_idempotent_send_200(schema):
    # then
    create_chat = schema["paths"]["/api/chats"]["post"]["responses"]
    send = next(v for k, v in schema["paths"].items() if shape(k) == "/api/chats/{}/messages")["post"]["responses"]
    assert {"200", "201"} <= set(create_chat)
    assert {"200", "201"} <= set(send)


def test_schema_names_the_role_enums_without_collision(schema):
    # then
    enums = {name for name in schema["components"]["schemas"] if name.endswith("Enum")}
    assert {"RoleEnum", "AssignableRoleEnum"} <= enums
    assert not any(re.search(r"\d+Enum$", name) for name in enums)


def test_schema_never_exposes_email_in_a_public_user(schema):
    # then
    assert "email" not in schema["components"]["schemas"]["PublicUser"]["properties"]


def test_spectacular_validates_the_schema_with_no_warnings(db):
    # when: `manage.py spectacular --validate --fail-on-warn`
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    # then
    assert yaml.safe_load(out.getvalue())["paths"]


def test_swagger_ui_is_served(client, db):
    # when
    r = client.get("/api/docs/")
    # then
    assert r.status_code == 200, r.content
    assert b"swagger" in r.content.lower()


def test_schema_documents_503_with_retry_after_on_every_operation(schema):
    operations = [op for methods in schema["paths"].values() for op in methods.values() if "responses" in op]
    assert operations
    assert all("503" in op["responses"] for op in operations)
    assert all("Retry-After" in op["responses"]["503"]["headers"] for op in operations)


def test_schema_documents_507_when_the_disk_is_full_on_upload(schema):
    responses = schema["paths"]["/api/attachments"]["post"]["responses"]
    assert "507" in responses
    assert responses["507"]["content"]["application/json"]["schema"]["required"] == ["detail"]


def test_schema_documents_every_status_of_message_search(schema):
    operation = schema["paths"]["/api/search/messages"]["get"]
    assert {"200", "400", "401", "404", "500", "503"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} >= {"q", "chat_id", "before", "limit"}
