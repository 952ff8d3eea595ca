"""Order events on the wire (protobuf JSON), for the services.

A service reaches core through the use cases (an import-linter contract), so
the consumer reads its records, and the demo producer writes them, by these
names: `decode_event` validates (InvalidArgument names the field), and
`encode_event` writes the canonical form. Both are customer_core.events'.
"""

from __future__ import annotations

from customer_core.events.decode import decode_event
from customer_core.events.encode import encode_event

__all__ = ["decode_event", "encode_event"]
