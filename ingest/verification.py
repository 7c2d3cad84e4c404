"""Authenticity of webhook requests, checked on the raw body before anything is parsed.

Clerk deliveries are Svix-signed (verified with the `svix` library, five-minute tolerance); Asaas sends
a static token compared in constant time. Several secrets may be valid at once during a rotation, and a
provider with no secret configured refuses every request (fail closed).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from svix.webhooks import Webhook, WebhookVerificationError

from ingest.errors import WebhookRejected

SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")


class ClerkVerifier:
    """Verifies Svix signatures against every configured `whsec_` secret."""

    def __init__(self, secrets: list[str]) -> None:
        self._webhooks = [Webhook(secret) for secret in secrets]

    @property
    def configured(self) -> bool:
        return bool(self._webhooks)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        if not self._webhooks:
            raise WebhookRejected(503, "provider_not_configured", "CLERK_WEBHOOK_SECRET is not set on this receiver")
        missing = [name for name in SVIX_HEADERS if not headers.get(name)]
        if missing:
            raise WebhookRejected(400, "missing_headers", f"missing header(s): {', '.join(missing)}")
        svix_headers = {name: headers[name] for name in SVIX_HEADERS}
        reason = "no signature matches a configured secret"
        for webhook in self._webhooks:
            try:
                webhook.verify(body, svix_headers)
                return
            except WebhookVerificationError as error:
                if "timestamp" in str(error).lower():
                    raise WebhookRejected(
                        401, "timestamp_out_of_tolerance", "svix-timestamp is more than 5 minutes from now"
                    ) from None
                if "header" in str(error).lower():
                    reason = "malformed svix-timestamp or svix-signature header"
            except (ValueError, TypeError, UnicodeDecodeError):
                # Malformed signature list, bad base64 or a body that is not UTF-8: not authentic.
                reason = "malformed svix-signature header or body"
        raise WebhookRejected(401, "invalid_signature", reason)


class AsaasVerifier:
    """Compares the `asaas-access-token` header with every configured token in constant time."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [token.encode() for token in tokens]

    @property
    def configured(self) -> bool:
        return bool(self._tokens)

    def verify(self, headers: Mapping[str, str]) -> None:
        if not self._tokens:
            raise WebhookRejected(503, "provider_not_configured", "ASAAS_WEBHOOK_TOKEN is not set on this receiver")
        presented = (headers.get("asaas-access-token") or "").encode()
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(presented, token)
        if not presented:
            raise WebhookRejected(401, "missing_token", "missing asaas-access-token header")
        if not matched:
            raise WebhookRejected(401, "invalid_token", "asaas-access-token does not match")
