"""Core models live in their modules (tenancy, events); importing them here registers them."""

from .events import Event, HandledEvent  # noqa: F401
from .tenancy import ApiKey, Store, StoreMembership  # noqa: F401
