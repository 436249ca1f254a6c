"""Background jobs on Celery (Redis broker + result backend): everything that is not answering a customer."""
