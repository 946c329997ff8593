from tests.support.catalog_factories import app_sessions

__all__ = ["app_sessions"]
