"""Event processing: the Celery task wrappers, applying one inbox event exactly once, its errors and
failure reasons, and the worker's telemetry."""
