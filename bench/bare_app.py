"""The ceiling for the receiver benchmark: a Flask app that answers 200 without doing anything."""

from flask import Flask, jsonify

app = Flask("bare")


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.post("/webhooks/clerk")
def clerk():
    return jsonify(status="accepted"), 200
