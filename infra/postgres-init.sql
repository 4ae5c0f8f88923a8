-- Databases of the journey-ml stack, one per component:
--   journey      the warehouse (journey-ml db upgrade creates its tables)
--   mlflow       MLflow tracking + model registry backend store
--   mlflow_auth  MLflow's basic-auth users and permissions (mlflow server --app-name basic-auth)
--   prefect      Prefect server backend (its migrations need pg_trgm)
--
-- Used by both deployments:
--   * docker-compose.yml mounts it into /docker-entrypoint-initdb.d/, where the postgres
--     image runs it once, on an empty data volume, as POSTGRES_USER (who then owns the
--     databases) with `psql -v ON_ERROR_STOP=1`: the names below are the defaults;
--   * infra/stack.sh runs it on every `up` against the local server, passing the names
--     (psql -v journey_db=... ; STACK_DB_PREFIX prefixes all four).
-- So it must be idempotent: CREATE DATABASE has no IF NOT EXISTS (and cannot run inside a
-- DO block), hence the SELECT ... \gexec pattern. The postgres image already creates
-- POSTGRES_DB (journey), which this skips.

\if :{?journey_db}
\else
\set journey_db journey
\endif
\if :{?mlflow_db}
\else
\set mlflow_db mlflow
\endif
\if :{?mlflow_auth_db}
\else
\set mlflow_auth_db mlflow_auth
\endif
\if :{?prefect_db}
\else
\set prefect_db prefect
\endif

SELECT format('CREATE DATABASE %I', :'journey_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'journey_db')\gexec

SELECT format('CREATE DATABASE %I', :'mlflow_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'mlflow_db')\gexec

SELECT format('CREATE DATABASE %I', :'mlflow_auth_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'mlflow_auth_db')\gexec

SELECT format('CREATE DATABASE %I', :'prefect_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'prefect_db')\gexec

-- Prefect's migrations run CREATE EXTENSION pg_trgm themselves; creating it here as well
-- means the prefect server does not depend on having the privilege to do so.
\connect :"prefect_db"
CREATE EXTENSION IF NOT EXISTS pg_trgm;
