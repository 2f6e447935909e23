"""The TLS client contexts of this process, each built once.

Building a context loads a whole bundle of CA certificates: 35 to 50 ms of CPU here, which every
webhook delivery, URL download and ML client used to pay again. A context is safe to share
between threads and connections; nothing changes one after it is built.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def system_context() -> ssl.SSLContext:
    """Python's default client context: the system's CA certificates, host names checked."""
    return ssl.create_default_context()


@functools.cache
def httpx_context() -> ssl.SSLContext:
    """httpx's default client context (certifi's CA bundle), as an ``httpx.Client`` makes."""
    return httpx.create_ssl_context()
