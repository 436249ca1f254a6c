"""Kefu's application shell: the `kefu` command line, the process launcher, the model build,
the Celery app and its jobs, and the monthly iteration loop.

It sits on top of everything (kefu, knowledge, handoff, analytics, Rasa); nothing imports it.
"""
