-- Databases of the journey-ml stack, one per component:
--   journey  the warehouse (journey-ml db upgrade creates its tables)
--   mlflow   MLflow tracking + model registry backend store
--   prefect  Prefect server backend (its migrations need pg_trgm)
--
-- Used by both deployments:
--   * docker-compose.yml mounts it into /docker-entrypoint-initdb.d/, where the postgres
--     image runs it once, on an empty data volume, as POSTGRES_USER (who then owns the
--     databases) with `psql -v ON_ERROR_STOP=1`;
--   * infra/stack.sh runs it on every `up` against the local server.
-- So it must be idempotent: CREATE DATABASE has no IF NOT EXISTS (and cannot run inside a
-- DO block), hence the SELECT ... \gexec pattern. The postgres image already creates
-- POSTGRES_DB (journey), which this skips.

SELECT 'CREATE DATABASE journey'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'journey')\gexec

SELECT 'CREATE DATABASE mlflow'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow')\gexec

SELECT 'CREATE DATABASE prefect'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'prefect')\gexec

-- Prefect's migrations run CREATE EXTENSION pg_trgm themselves; creating it here as well
-- means the prefect server does not depend on having the privilege to do so.
\connect prefect
CREATE EXTENSION IF NOT EXISTS pg_trgm;
