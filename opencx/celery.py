import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opencx.settings")

app = Celery("opencx")
# Every Celery setting lives in Django's settings under the CELERY_ prefix, so the
# embedded default (eager, no broker) and production (Redis) differ only by env.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
