# pedro-ingest: one image for every process (receiver, worker, beat, migrate); the command picks the role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md celeryconfig.py ./
COPY ingest ./ingest
COPY workers ./workers
COPY models ./models
COPY migrations ./migrations
RUN pip install . && useradd --system --uid 10001 pedro && install -d -o pedro -g pedro /var/lib/pedro
USER pedro

EXPOSE 8000 9808
ENTRYPOINT ["pedro-ingest"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "4"]
