"""Database backends: Django's own, with a circuit breaker on opening connections.

When a database refuses connections (or the pool cannot hand one out), every request that needs
it would otherwise wait the full connect or pool timeout, holding a worker thread; a few such
requests starve the healthy endpoints too. The breaker remembers the failure: for
``DB_BREAKER_SECONDS`` after it, opening a connection to that database fails at once; after the
window one caller probes the server on a fresh, unpooled connection with a short timeout, and
the breaker closes again as soon as a probe or a real connection succeeds. After a failure that
came at once (connection refused, the server starting up) there is no window: each attempt
probes first (a refused connection costs about a millisecond), so the first request after the
server is back gets through in every process.
"""
