"""ImportCustomers: protobuf records -> domain records, the summary -> protobuf."""

from __future__ import annotations

from customer_api.convert.customers import dietary_from_pb, preferences_from_pb, role_from_pb
from customer_api.convert.favorites import customization_from_pb
from customer_core.domain.customers import Profile
from customer_core.domain.favorites import Draft
from customer_core.domain.imports import ImportFavorite, ImportRecord, ImportSummary
from customer_core.pb.customer.v1 import customer_pb2 as pb


def record_from_pb(m: pb.ImportRecord, position: int) -> ImportRecord:
    """The record as domain values (not yet validated); InvalidArgument for an unknown enum."""
    return ImportRecord(
        position=position,
        external_id=m.external_id,
        family_external_id=m.family_external_id,
        family_display_name=m.family_display_name,
        profile=Profile(
            username=m.username,
            display_name=m.display_name,
            email=m.email,
            role=role_from_pb(m.role, "role"),
            preferences=preferences_from_pb(m.preferences, "preferences"),
            dietary=dietary_from_pb(m.dietary, "dietary"),
        ),
        favorites=tuple(
            ImportFavorite(
                Draft(
                    f.drink_id,
                    f.drink_name,
                    customization_from_pb(f.customization, f"favorites[{i}].customization"),
                ),
                f.is_usual,
            )
            for i, f in enumerate(m.favorites)
        ),
        opening_points=m.opening_points,
    )


def summary_to_pb(s: ImportSummary) -> pb.ImportCustomersResponse:
    return pb.ImportCustomersResponse(
        received=s.received,
        created=s.created,
        updated=s.updated,
        unchanged=s.unchanged,
        rejected=s.rejected,
        rejections=[
            pb.ImportRejection(
                position=r.position, external_id=r.external_id, field=r.field, reason=r.reason
            )
            for r in s.rejections
        ],
    )
