"""Security settings for tests whose subject is not authentication.

The api has no default AUTH_MODE, so a test that starts one in-process says
which it wants; these use `none` (every caller an operator), as before.
"""

from __future__ import annotations

from customer_api.security.settings import SecuritySettings, load_security_settings

NO_AUTH: SecuritySettings = load_security_settings({"AUTH_MODE": "none"})
