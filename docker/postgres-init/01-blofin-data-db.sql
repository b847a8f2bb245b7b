-- The data database of the pipeline (connection blofin_db), beside Airflow's metadata
-- database (POSTGRES_DB). Runs once, when the postgres volume is first created.
CREATE DATABASE blofin;
