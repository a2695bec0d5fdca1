"""Django's PostgreSQL backend, with a connection pool that survives the server dropping its
connections (see base.py). Selected by settings.py when the pool is on (DB_POOL_MAX_SIZE)."""
