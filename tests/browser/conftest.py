import os
import shutil

import pytest

# Playwright's sync API runs an event loop in the test thread, which Django then takes
# for async code; the ORM calls these tests make from that thread are synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from tests.conftest import require_service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    require_service(
        shutil.which("chromium") is not None,
        "Chromium is not installed (apt-get install chromium)",
    )
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        # The machine's network is closed: keep Chromium from calling home.
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def signed_in_page(page, live_server, support_admin):
    """A browser page signed in to the dashboard as a support admin."""
    user, password = support_admin
    page.set_default_timeout(10_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    return page


@pytest.fixture
def support_admin(transactional_db):
    from actions.models import Organization, User

    org = Organization.objects.create(name="Acme", slug="acme")
    password = "correct-horse-battery-staple"
    user = User.objects.create_user(
        "acme-admin", password=password, is_staff=True, organization=org
    )
    return user, password
