"""drf-spectacular hooks: the schema shows the contract's paths as API.md writes them."""

from typing import Any


def contract_paths(endpoints: list[tuple[str, str, str, Any]], **kwargs: Any) -> list[tuple[str, str, str, Any]]:
    """Drop the trailing slash the routers' optional "/?" renders as: the contract's paths have none
    (both forms are served)."""
    return [(path.rstrip("/") if path != "/" else path, regex, method, view) for path, regex, method, view in endpoints]
