from tests.conftest import *  # noqa: F403  (shared personas: platform_admin, operator, viewer, outsider, client_for, …)
