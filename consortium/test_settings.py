"""Settings for the test suite: the same as production or embedded (from the environment), plus
what a test run needs to start without a deployment's secrets."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-any-deployment-0123456789")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("VR_CHANNEL_PREFIX", f"vrtest{os.getpid()}")

from consortium.settings import *  # noqa: F403
from consortium.settings import ALLOWED_HOSTS

ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# In-process tests run Celery tasks at once; the live tests (tests/live) run real workers on Redis.
CELERY_TASK_ALWAYS_EAGER = True
