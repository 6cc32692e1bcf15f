"""gunicorn reads this file from the directory it starts in (the repository root)."""


def post_worker_init(worker):
    """Each worker, once the application is loaded and before it takes a request, opens its
    database, cache and broker connections (cxplatform/warmup.py)."""
    from cxplatform.warmup import warm_connections

    seconds = warm_connections()
    worker.log.info("worker %s warmed up its connections in %.0f ms", worker.pid, seconds * 1000)
