"""Credentials out of text that is logged, recorded or shown: URLs, command lines, messages.

One pattern for every place (the JDBC URL in a lineage column or an error, the config recorded
with a model, spark-submit.sh's echo of its command): a property whose name says it is a
credential keeps its name and loses its value.
"""

from __future__ import annotations

import re

# A property whose name contains one of these is a credential (password, pwd, user, token,
# accessToken, SecretAccessKey, apiKey, sessionToken, credentials, sig, authorization).
_SECRET_PROPERTY = re.compile(
    r"(?i)([\w.-]*(?:password|pwd|user|secret|token|key|credential|auth|sig)[\w.-]*)=[^&;\s'\"]*")
_AUTHORITY = re.compile(r"//[^/@\s]+@")


def redact_url(url: str) -> str:
    """A URL without credentials in its query string, its properties or its authority."""
    return _AUTHORITY.sub("//***@", _SECRET_PROPERTY.sub(r"\1=***", url))


def redact_webhook(url: str) -> str:
    """A webhook URL as scheme and host only: many (Slack's, Teams') carry their secret in the path."""
    match = re.match(r"^([a-z][a-z0-9+.-]*://[^/@?#]*@?[^/?#]*)", url, re.IGNORECASE)
    host = match.group(1) if match else ""
    return f"{_AUTHORITY.sub('//***@', host)}/***" if host else "***"


def main() -> None:
    """`python -m lakeboost.redact`: stdin to stdout without credentials (spark-submit.sh's echo)."""
    import sys

    for line in sys.stdin:
        sys.stdout.write(redact_url(line))


if __name__ == "__main__":
    main()
