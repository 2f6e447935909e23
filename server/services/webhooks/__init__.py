"""Webhooks: receivers registered per project, told of changes by signed HTTP POSTs.

:mod:`.registry` stores them; :mod:`.outbox` turns committed events into delivery rows in the
same transaction; :mod:`.worker` posts them from a background thread with retries
(:mod:`.sender` signs and sends one body).
"""
