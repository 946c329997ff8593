# Spotless — every command a newcomer, CI and an operator run. `just --list` shows them.
set shell := ["bash", "-euo", "pipefail", "-c"]
set dotenv-load := false

export PORT := env_var_or_default("PORT", "8000")
export HOST := env_var_or_default("HOST", "127.0.0.1")
export PYTHONPATH := justfile_directory() + "/src:" + justfile_directory()
export PROMETHEUS_MULTIPROC_DIR := env_var_or_default("PROMETHEUS_MULTIPROC_DIR", justfile_directory() + "/.data/prometheus")

# Private PostgreSQL + Redis under .data/ unless DATABASE_URL / REDIS_URL are set (CI, compose, prod).
services := 'mkdir -p "$PROMETHEUS_MULTIPROC_DIR"; if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then lines="$(uv run --no-sync python scripts/dev_services.py env)"; eval "$lines"; fi'

default:
    @just --list

# Install the locked dependencies (and uv itself when missing), compiled to bytecode: with
# PYTHONDONTWRITEBYTECODE set (CI's and many shells' default) every process, each API node and worker
# a test starts, would otherwise compile ~500 modules from source (~2 s each start).
setup:
    command -v uv >/dev/null || python3 -m pip install --quiet uv
    uv sync --frozen --quiet --compile-bytecode
    uv run --no-sync python -m compileall -q -j0 src workers scripts tests >/dev/null

# API + worker + scheduler on $PORT, migrations applied. Ctrl-C stops all three.
run: setup migrate
    #!/usr/bin/env bash
    set -euo pipefail
    # Files of processes from an earlier run would be summed in: start clean.
    rm -rf "$PROMETHEUS_MULTIPROC_DIR"
    {{services}}
    export JOB_HEARTBEAT_REQUIRED="${JOB_HEARTBEAT_REQUIRED:-true}"
    trap 'kill 0' EXIT INT TERM
    uv run --no-sync dramatiq workers.worker --processes 1 --threads 8 &
    uv run --no-sync python -m workers.scheduler &
    WEB_CONCURRENCY="${WEB_CONCURRENCY:-1}" uv run --no-sync python -m spotless.serve &
    wait -n

# The API alone, on $HOST:$PORT: API_SERVER=granian (default) or uvicorn, WEB_CONCURRENCY workers
# (default: the cores, `nproc`). src/spotless/serve.py builds the command, as in the image.
api: setup
    {{services}}; exec uv run --no-sync python -m spotless.serve

# The Dramatiq worker pool alone.
worker: setup
    {{services}}; exec uv run --no-sync dramatiq workers.worker --processes "${WORKER_PROCESSES:-2}" --threads "${WORKER_THREADS:-8}"

# The periodic scheduler (and outbox sweeper) alone.
scheduler: setup
    {{services}}; exec uv run --no-sync python -m workers.scheduler

# Apply the migrations (as the table owner: DATABASE_MIGRATION_URL, else DATABASE_URL).
migrate: setup
    {{services}}; uv run --no-sync alembic -c config/alembic.ini upgrade head

# Run one job now: just job system.tick (or a guide's name: just job jobs-runner); list them: uv run python -m workers.run --list
job NAME *ARGS: setup
    {{services}}; uv run --no-sync python -m workers.run --job {{NAME}} --once {{ARGS}}

# Dead letters: `just dlq` lists, `just dlq replay [ID ...]` sends them back.
dlq *ARGS="list": setup
    {{services}}; uv run --no-sync python -m workers.dlq {{ARGS}}

# Events from outside not handled yet: `just inbox` lists them, `just inbox replay [ID ...]` enqueues them again.
inbox *ARGS="list": setup
    {{services}}; uv run --no-sync python -m workers.inbox {{ARGS}}

# The whole test suite on real PostgreSQL and Redis.
test *ARGS: setup
    {{services}}; uv run --no-sync pytest {{ARGS}}

# The fuzz node runs with the rate limiter off and sign-in throttling out of reach: a 429 is a
# documented answer, so limits would only hide operations from the fuzzer (they have their own
# tests). FUZZ_MAX_EXAMPLES (default 50; CI 25) and FUZZ_SEED bound and fix the run; ARGS after `--`
# go to `schemathesis run`. See scripts/fuzz/__main__.py.

# Schemathesis over the whole OpenAPI as an org owner, real node, fresh database: 0 failures.
fuzz *ARGS: setup
    {{services}}; uv run --no-sync python -m scripts.fuzz {{ARGS}}

# ruff and mypy.
lint: setup
    uv run --no-sync ruff check src tests workers scripts
    uv run --no-sync ruff format --check src tests workers scripts
    uv run --no-sync mypy

# Benchmarks: k6 drives each hot operation beside bare Litestar and its floor (10k bookings), then jobs.
# `just bench volume` (or BENCH_VOLUME=1m) adds 1M bookings; other areas: identity ratelimit redis-outage scheduling.
bench *ARGS: setup
    {{services}}; uv run --no-sync python -m scripts.bench {{ARGS}}

# Load smoke against a running API (default http://$HOST:$PORT) with k6: fails unless errors < 5 % and p95 < 300 ms.
load BASE_URL="": setup
    base="{{BASE_URL}}"; exec uv run --no-sync k6 run --no-usage-report -e BASE_URL="${base:-http://$HOST:$PORT}" scripts/load/smoke.js

# Seed the large data set the scheduling benchmarks compare against.
seed-volume *ARGS: setup
    {{services}}; uv run --no-sync python scripts/seed_volume.py {{ARGS}}

# Stop the private PostgreSQL and Redis.
services-stop:
    uv run --no-sync python scripts/dev_services.py stop

# Release: build the image, migrate, roll out, wait for /readyz, smoke. See scripts/deploy.sh.
deploy *ARGS:
    scripts/deploy.sh {{ARGS}}
