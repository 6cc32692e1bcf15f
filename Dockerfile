FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files are collected (hashed and compressed) at build time with throwaway values.
RUN SECRET_KEY=build-only-$(python -c "import secrets; print(secrets.token_urlsafe(50))") \
    ALLOWED_HOSTS=build DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    DJANGO_SETTINGS_MODULE=cxplatform.settings.production python manage.py collectstatic --noinput
RUN useradd --system --home /app cx && mkdir -p /app/var/media && chown -R cx /app/var
USER cx
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "cxplatform.asgi:application"]
