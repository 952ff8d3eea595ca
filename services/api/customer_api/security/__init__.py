"""Securing the gRPC API: TLS and mTLS, bearer tokens, per-caller scopes with
family scoping, rate and stream limits, default deadlines and the audit trail.

`AUTH_MODE=none` (the default, for `make run`) installs none of it; any other
mode installs `SecurityInterceptor` in front of the edge interceptor.
"""
