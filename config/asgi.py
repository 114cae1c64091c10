"""ASGI entry point (uvicorn): async views and async httpx calls share one event loop.

API paths (/v1/, /api/, /health) take a lean middleware chain, and
``POST /v1/chat/completions`` a raw ASGI data plane (see ``api.asgi``); the admin and the
dashboard take the full Django chain.
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_asgi_application()

from api.asgi import with_lean_api_handler  # noqa: E402 - needs the configured Django above
from config.static_asgi import with_static_files  # noqa: E402 - reads the static settings
from dashboard.charts import warm_up as warm_up_charts  # noqa: E402 - imports plotly
from routing_platform import runtime  # noqa: E402, F401 - the hot path's engine, loaded now

application = with_static_files(with_lean_api_handler(django_application))

# plotly.py's modules and validators, loaded now rather than in the first dashboard request.
warm_up_charts()

# Django, ninja, pydantic and the engine leave ~140,000 long-lived objects behind at start-up;
# every full (generation 2) garbage collection walks them all, a ~75 ms pause on this
# 2-core VM that lands in the p99 of whichever requests are in flight. Freezing them moves
# them out of the collector's generations (they are never freed anyway), so the periodic
# collections only walk what requests allocate.
gc.collect()
gc.freeze()
