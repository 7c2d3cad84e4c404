"""Authenticity of webhook requests, checked on the raw body before anything is parsed.

Clerk deliveries are Svix-signed (verified with the `svix` library, five-minute tolerance); Asaas sends
a static token compared in constant time. Several secrets may be valid at once during a rotation, and a
provider with no secret configured refuses every request (fail closed).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

from svix.webhooks import Webhook, WebhookVerificationError

from ingest.receiver.errors import WebhookRejected

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")


class ClerkVerifier:
    """Verifies Svix signatures against every configured `whsec_` secret."""

    def __init__(self, secrets: list[str]) -> None:
        self._webhooks = [Webhook(secret) for secret in secrets]

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        if not self._webhooks:
            raise WebhookRejected(503, "provider_not_configured", "CLERK_WEBHOOK_SECRET is not set on this receiver")
        found = {name: headers.get(name) for name in SVIX_HEADERS}  # one lookup each (they are not cheap)
        missing = [name for name, value in found.items() if not value]
        if missing:
            raise WebhookRejected(400, "missing_headers", f"missing header(s): {', '.join(missing)}")
        svix_headers = {name: value for name, value in found.items() if value}
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


class IpAllowList:
    """Optional source-address check for Asaas (it publishes its webhook IPs). Empty list: check is off.

    `X-Forwarded-For` is believed only when the direct peer is a configured trusted proxy; the client is
    then the right-most address that is not itself a trusted proxy (left-most entries are client-forged).
    """

    def __init__(self, allowed: list[IpNetwork], trusted_proxies: list[IpNetwork]) -> None:
        self.allowed = allowed
        self.trusted_proxies = trusted_proxies

    @staticmethod
    def _address(raw: str | None) -> IpAddress | None:
        """The address, with an IPv4 client of a dual-stack listener (`::ffff:a.b.c.d`) read as IPv4."""
        try:
            address = ipaddress.ip_address((raw or "").strip())
        except ValueError:
            return None
        mapped = getattr(address, "ipv4_mapped", None)
        return mapped or address

    def _trusted(self, address: IpAddress | None) -> bool:
        return address is not None and any(address in network for network in self.trusted_proxies)

    def client_address(self, remote_addr: str | None, forwarded_for: str | None) -> IpAddress | None:
        client = self._address(remote_addr)
        if not self._trusted(client) or not forwarded_for:
            return client
        for hop in reversed(forwarded_for.split(",")):
            client = self._address(hop)
            if not self._trusted(client):
                return client
        return client

    def check(self, remote_addr: str | None, headers: Mapping[str, str]) -> None:
        if not self.allowed:
            return
        client = self.client_address(remote_addr, headers.get("X-Forwarded-For"))
        if client is None or not any(client in network for network in self.allowed):
            raise WebhookRejected(403, "ip_not_allowed", "source address is not in ASAAS_ALLOWED_IPS")
