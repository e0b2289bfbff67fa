"""Imports every model module so that Base.metadata knows every table."""

from . import actor, follow, interaction, meta, notification, oauth, post, resident, timeline, village  # noqa: F401
