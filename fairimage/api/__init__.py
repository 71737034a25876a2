"""The HTTP interface: FastAPI app factory and one router per resource."""

from fairimage.api.app import create_app

__all__ = ["create_app"]
