"""Benchmark settings: production settings plus a floor view to compare against."""

from opencx.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# The benchmark measures the request path, not the rate limiter's refusals.
API_RATE_LIMITS = dict.fromkeys(API_RATE_LIMITS, 10**9)  # noqa: F405
