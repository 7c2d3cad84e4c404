"""Periodic jobs run by beat, one module each, with their Celery task wrappers in `periodic_tasks`."""
