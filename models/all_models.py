"""Imports every model module so that Base.metadata knows every table."""

from . import actor, follow, interaction, media, meta, notification, oauth, post, resident, timeline, village  # noqa: F401
from . import delivery, inbox_item, instance, tombstone  # noqa: F401
