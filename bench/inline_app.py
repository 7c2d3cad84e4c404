"""The pattern most apps run today, as the baseline: verify, then write user + balance + ledger inline,
and only then answer. (What pedro-ingest replaces: the sender waits for the whole effect.)"""

from __future__ import annotations

import json
import os
import threading

import psycopg2
from flask import Flask, jsonify, request
from svix.webhooks import Webhook, WebhookVerificationError

from bench.raw_effects import apply_user
from ingest.http.server.gevent_db import cooperative_database_waits

cooperative_database_waits()  # same server as the receiver: under gevent its queries must not block the process

app = Flask("inline")
webhook = Webhook(os.environ["CLERK_WEBHOOK_SECRET"])
local = threading.local()


def connection():
    if getattr(local, "connection", None) is None:
        local.connection = psycopg2.connect(os.environ["DATABASE_URL"])
    return local.connection


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.post("/webhooks/clerk")
def clerk():
    body = request.get_data()
    try:
        webhook.verify(body, dict(request.headers))
    except WebhookVerificationError:
        return jsonify(error="invalid_signature"), 401
    payload = json.loads(body)
    conn = connection()
    with conn, conn.cursor() as cursor:
        # One new user per delivery, as in a signup burst.
        payload["data"]["id"] = request.headers["svix-id"]
        payload["data"]["email_addresses"][0]["email_address"] = f"{request.headers['svix-id']}@example.org"
        apply_user(cursor, request.headers["svix-id"], payload)
    return jsonify(status="ok"), 200
