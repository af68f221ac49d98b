# The API image for docker compose. The database is the postgis/postgis service beside it.
FROM node:20-bookworm-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends fonts-noto-cjk && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY gis ./gis
COPY api ./api
COPY cli ./cli
COPY layers ./layers
# Editable: the package finds layers/ and node_modules/ beside it, as in a checkout.
RUN pip install --no-cache-dir -c constraints.txt -e .
COPY --from=assets /app/node_modules ./node_modules
ENV GIS_HOST=0.0.0.0
EXPOSE 8000
CMD ["sh", "-c", "gis db up && gis serve --host 0.0.0.0"]
