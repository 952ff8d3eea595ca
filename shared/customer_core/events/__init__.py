"""Order events on the wire (protobuf JSON): `decode` reads and validates, `encode` writes.

`decode` holds a fast reader of the canonical form and falls back to `walk`, the
general reader of every spelling the mapping allows; a property test proves the
two agree.
"""
