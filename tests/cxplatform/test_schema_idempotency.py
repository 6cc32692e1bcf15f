"""Every POST in /api/schema/ documents the optional Idempotency-Key header and its 422/409."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_every_post_documents_the_idempotency_key_header_and_422(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()

    posts = {path: item["post"] for path, item in schema["paths"].items() if "post" in item}
    assert len(posts) >= 10
    assert "/api/v1/customers/" in posts and "/api/v1/events/" in posts
    for path, operation in posts.items():
        headers = [p for p in operation.get("parameters", []) if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        assert len(headers) == 1, path
        assert headers[0]["required"] is False
        assert headers[0]["schema"]["maxLength"] == 255
        assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}, path
        assert "409" in operation["responses"], path
    assert schema["components"]["schemas"]["Error"]["required"] == ["error"]


def test_other_methods_do_not_get_the_header(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()

    for path, item in schema["paths"].items():
        for method in ("get", "patch", "put", "delete"):
            parameters = item.get(method, {}).get("parameters", [])
            assert not [p for p in parameters if p["name"] == "Idempotency-Key"], (method, path)
