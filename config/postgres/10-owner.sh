#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d), as the
# image's superuser. It gives compose the shape of managed PostgreSQL (RDS, Cloud SQL): the tables'
# owner is a LOGIN role with CREATEROLE and CREATEDB, NOT a superuser, and owns the database.
# Everything else (spotless_app, spotless_definer, the app's login spotless_api) is created by
# that owner in `migrate` (migrations 0001/0002 and DATABASE_APP_LOGIN, see src/spotless/db/roles.py).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner_password="$SPOTLESS_OWNER_PASSWORD" <<'SQL'
CREATE ROLE spotless_owner LOGIN CREATEROLE CREATEDB NOSUPERUSER NOBYPASSRLS PASSWORD :'owner_password';
CREATE DATABASE spotless OWNER spotless_owner;
SQL
