"""The demo plan `pedro-ingest dev` seeds in its embedded database, so that the sample payment grants credits.

Only the embedded database gets it: a user's own database never receives rows it did not ask for. The
sample Asaas payment names it in `externalReference` (`<clerk id>|plan:<DEMO_PLAN_ID>`), the convention a
web app uses for its own plans.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

DEMO_PLAN_ID = "pedro_demo_plan"
DEMO_PLAN_CREDITS = 500

_SEED = text(
    """
    INSERT INTO "Plan" (id, "asaasId", name, credits, description, "updatedAt")
    VALUES (:id, :id, 'Demo plan', :credits, 'Seeded by pedro-ingest dev for send-sample.', now())
    ON CONFLICT DO NOTHING
    """
)


def seed_demo_plan(engine: Engine) -> bool:
    """True when the plan was added now (False: already there)."""
    with engine.begin() as connection:
        return connection.execute(_SEED, {"id": DEMO_PLAN_ID, "credits": DEMO_PLAN_CREDITS}).rowcount == 1


def demo_reference(clerk_id: str) -> str:
    return f"{clerk_id}|plan:{DEMO_PLAN_ID}"
