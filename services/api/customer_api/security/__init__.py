"""Securing the gRPC API: TLS and mTLS, bearer tokens, per-caller scopes with
family scoping, rate and stream limits, default deadlines and the audit trail.

`AUTH_MODE` is required (only `customer-service dev` sets `none` by itself);
`none` installs none of it, says so at start and in the `customer_auth_disabled`
gauge; any other mode installs `SecurityInterceptor` in front of the edge
interceptor.
"""
