"""Celery workers, in rooms by concern: `celery_app` (the app), `processing/` (apply one inbox event
exactly once), `handlers/` (one function per provider event group, in one table), `jobs/` (the periodic
jobs beat runs) and `providers/` (the Asaas and Clerk API clients)."""
