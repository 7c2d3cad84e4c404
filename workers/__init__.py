"""Celery workers: the app, thin task wrappers, and one handler per provider event type."""
