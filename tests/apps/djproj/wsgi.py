import os
import sys

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproj.settings")
application = get_wsgi_application()

if os.environ.get("TEST_APP_ANNOUNCE"):
    # The tests wait for this line before the first request (see support::ANNOUNCE).
    print("test app loaded: djproj, pid %d" % os.getpid(), file=sys.stderr, flush=True)
