"""The one Asaas API call pedro-ingest makes: an installment purchase's total (`GET /installments/{id}`).

Webhooks carry each installment's value but not the purchase's total, and the share an installment's
refund or chargeback reverses is its value over that total. With `ASAAS_API_KEY` the total comes from
Asaas itself, once per purchase; without it (or when Asaas does not know the id) the caller falls back to
the sum of the installments seen.
"""

from __future__ import annotations

from decimal import Decimal

import requests

from ingest.config.settings import Settings
from ingest.formats.money import MoneyError, parse_money
from workers.errors import TransientError


def installment_total(settings: Settings, installment_id: str) -> Decimal | None:
    """The purchase total Asaas reports, None when no API key is set or Asaas does not know the id."""
    if settings.asaas_api_key is None:
        return None
    try:
        response = requests.get(
            f"{settings.asaas_api_url.rstrip('/')}/installments/{installment_id}",
            headers={"access_token": settings.asaas_api_key.get_secret_value(), "User-Agent": "pedro-ingest"},
            timeout=5,
        )
    except (requests.ConnectionError, requests.Timeout):
        raise TransientError("the Asaas API does not answer") from None
    if response.status_code in (400, 404):
        return None
    if response.status_code != 200:
        raise TransientError(f"the Asaas API answered {response.status_code}")
    try:
        total = parse_money(response.json().get("value"))
    except (ValueError, MoneyError, AttributeError):
        return None
    return total if total > 0 else None
