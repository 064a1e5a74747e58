-- Databases of the platform on one PostgreSQL server (docker-compose.yaml).
--
-- The postgres image runs this once, when its data volume is empty, as POSTGRES_USER
-- (the vidflow role, which therefore owns everything created here) while connected to
-- POSTGRES_DB, the catalog database `vidflow`, which the image has already created.
-- The names are the defaults of VIDFLOW_PG_AIRFLOW_DB and VIDFLOW_PG_MLFLOW_DB.
CREATE DATABASE airflow;
CREATE DATABASE mlflow;
