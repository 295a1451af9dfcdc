"""The product's URLs plus the framework floor: a minimal view returning a precomputed
JSON body (the tool list's own bytes), to compare throughput against."""

import os
from pathlib import Path

from django.http import HttpResponse
from django.urls import path

from opencx.urls import urlpatterns as product_urlpatterns

_FLOOR = Path(os.environ.get("BENCH_FLOOR_BODY", "/nonexistent"))
_BODY = _FLOOR.read_bytes() if _FLOOR.is_file() else b"{}"


def floor(request):
    return HttpResponse(_BODY, content_type="application/json")


urlpatterns = [path("bench/floor", floor), *product_urlpatterns]
