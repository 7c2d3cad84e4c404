"""The shipped Prometheus alert rules: well-formed, covering the failures README tells operators to watch,
and naming only metrics the code really exports (a renamed metric would silently disable an alert)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import Counter, Histogram

from ingest.observability import metrics

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
SCRAPE_TIME = re.compile(r'GaugeMetricFamily\(\s*"(pedro_\w+)"')
SCRAPE_TIME_COUNTER = re.compile(r'CounterMetricFamily\(\s*"(pedro_\w+)"')


def exported_metric_names() -> set[str]:
    """Every series name pedro-ingest exposes: process metrics with their suffixes, and scrape-time gauges."""
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(value._name + "_total")
        elif isinstance(value, Histogram):
            names |= {value._name + suffix for suffix in ("", "_bucket", "_sum", "_count")}
    for source in (ROOT / "ingest").rglob("*.py"):
        text = source.read_text()
        names |= set(SCRAPE_TIME.findall(text))
        names |= {name + suffix for name in SCRAPE_TIME_COUNTER.findall(text) for suffix in ("", "_total")}
    return names


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_rule_is_complete_and_uniquely_named() -> None:
    loaded = rules()
    assert len({rule["alert"] for rule in loaded}) == len(loaded)
    for rule in loaded:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")")
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])


def test_every_expression_names_an_exported_metric() -> None:
    exported = exported_metric_names()
    for rule in rules():
        named = set(re.findall(r"\b(pedro_[a-z_]+)\b", rule["expr"]))
        assert named, rule["alert"]
        assert named <= exported, f"{rule['alert']}: {named - exported} not exported"


def test_the_failures_operators_must_hear_about_have_a_rule() -> None:
    watched = {name for rule in rules() for name in re.findall(r"\b(pedro_[a-z_]+)\b", rule["expr"])}
    for metric in ("pedro_ingest_dead_letters", "pedro_ingest_inbox_oldest_unprocessed_age_seconds",
                   "pedro_ingest_balance_drift_balances", "pedro_ingest_queue_depth"):  # fmt: skip
        assert metric in watched


def test_readme_points_at_the_rules() -> None:
    assert "deploy/prometheus/alerts.yml" in (ROOT / "README.md").read_text()


def test_every_metric_has_the_one_prefix_and_every_documented_name_is_exported() -> None:
    exported = exported_metric_names()
    assert exported and all(name.startswith("pedro_ingest_") for name in exported), sorted(exported)
    for page in (ROOT / "docs").glob("*.md"):
        named = set(re.findall(r"`(pedro_ingest_[a-z_]+)", page.read_text()))
        assert named <= exported, f"{page.name}: {named - exported} not exported"
