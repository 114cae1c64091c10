# One image for every service of docker-compose.yml: web (uvicorn), worker (rqworker) and
# the one-shot migrate job. Installs the locked versions from constraints.txt.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY config ./config
COPY routing_platform ./routing_platform
COPY experiments ./experiments
COPY dashboard ./dashboard
COPY api ./api
RUN python -m venv /venv \
    && /venv/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    ROUTING_DATA_DIR=/app/var
RUN useradd --system --create-home --uid 10001 routing
COPY --from=build /venv /venv
WORKDIR /app
COPY --chown=routing:routing . .
# Static files are collected at build time; WhiteNoise serves them from STATIC_ROOT.
RUN DJANGO_DEBUG=false DJANGO_SECRET_KEY=collectstatic-only-not-a-runtime-secret \
    python manage.py collectstatic --noinput -v 0 \
    && chown -R routing:routing /app/var
USER routing
EXPOSE 8000
# uvicorn through routing_platform.serve: X-Forwarded-For is trusted only from the proxies
# that FORWARDED_ALLOW_IPS names (from nobody when it is empty).
CMD ["python", "-m", "routing_platform.serve", "--host", "0.0.0.0", "--port", "8000"]
