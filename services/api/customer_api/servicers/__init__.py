"""Servicers, one module per domain area, composed into the one CustomerService."""
