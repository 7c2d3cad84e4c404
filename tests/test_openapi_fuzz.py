"""Schemathesis against the real app (PostgreSQL and Redis behind it): no 5xx, nothing off the spec.

Bounded: a few dozen generated requests per operation, so the run takes seconds. Generated requests
are not signed, so the webhook endpoint answers its documented 4xx; signed ones are covered elsewhere.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ingest.http import openapi


def not_a_server_error(ctx, response, case) -> None:
    """5xx only where documented: 503 for an unavailable dependency, never 500."""
    if response.status_code >= 500:
        documented = case.operation.definition.raw.get("responses", {})
        assert str(response.status_code) in documented, f"undocumented {response.status_code}"
        assert response.status_code != 500


schema = schemathesis.openapi.from_dict(openapi.spec())
OPERATIONS_PATHS = {"/readyz", "/metrics", "/openapi.json"}  # served on the operations port


@pytest.fixture(scope="module")
def operations_app():
    from ingest.http.operations_app import create_operations_app

    return create_operations_app()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, app, operations_app) -> None:
    case.call_and_validate(
        app=operations_app if case.path in OPERATIONS_PATHS else app,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
    )
