"""Database layer: models, engine/session creation, schema migration, queries."""
