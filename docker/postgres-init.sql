-- Runs once, when the PostgreSQL volume is first created.
CREATE DATABASE hydra;
