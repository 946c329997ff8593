"""The OpenAPI says what a response always carries, so generated clients need no null checks for it.

Litestar marks a Struct field `required` only when it has no default, which is right for a request
(a field with a default need not be sent) but wrong for a response: msgspec always encodes every field
of a response Struct, default or not, so `notes: str | None = None` is always there (possibly null).
The same held for the offset-page envelope (`items`, `limit`, `offset`, `total` all optional).

`ResponseSchemaPlugin` sees every route as it is registered, remembers the Structs a client sends
(bodies and parameters, nested ones included) and, for every other Struct, marks as required each
field that is always encoded. What stays optional is what is honestly absent sometimes:
- a field typed with `UnsetType` (`WorkerRead.phone` hidden by permission, `ClientRead.addresses`
  sent only when asked for), which msgspec omits when UNSET;
- a field with a default in a Struct declared `omit_defaults=True` (`ProblemDocument.errors`).
A Struct used both as input and output keeps the input's rules (required = must be sent).
"""

from __future__ import annotations

import types
import typing
from typing import TYPE_CHECKING, Any

import msgspec
from litestar._openapi.schema_generation.plugins.pagination import PaginationSchemaPlugin
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.pagination import OffsetPagination
from litestar.plugins import ReceiveRoutePlugin

from spotless.lib.validation import structs_in

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.routes import BaseRoute
    from litestar.typing import FieldDefinition

_OFFSET_PAGE_FIELDS = ["items", "limit", "offset", "total"]


def _may_be_absent(info: msgspec.structs.FieldInfo, omit_defaults: bool) -> bool:
    if omit_defaults and not info.required:
        return True
    return _has_unset(info.type)


def _has_unset(annotation: Any) -> bool:
    if annotation is msgspec.UnsetType:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _has_unset(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_has_unset(a) for a in typing.get_args(annotation))
    return False


class ResponseSchemaPlugin(StructSchemaPlugin, ReceiveRoutePlugin):
    """Struct schemas with `required` meaning "always present" for what only the server sends."""

    def __init__(self) -> None:
        self.inputs: set[type] = set()
        self._pages = PaginationSchemaPlugin()

    def receive_route(self, route: BaseRoute) -> None:
        for handler in getattr(route, "route_handlers", ()):
            for parameter in handler.parsed_fn_signature.parameters.values():
                structs_in(parameter.annotation, self.inputs)

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.origin is OffsetPagination or super().is_plugin_supported_field(field_definition)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        if field_definition.origin is OffsetPagination:
            page = self._pages.to_openapi_schema(field_definition, schema_creator)
            page.required = list(_OFFSET_PAGE_FIELDS)
            return page
        schema = super().to_openapi_schema(field_definition, schema_creator)
        struct = field_definition.origin or field_definition.type_
        if struct in self.inputs:
            return schema
        omit_defaults = bool(struct.__struct_config__.omit_defaults)
        always = {
            info.encode_name for info in msgspec.structs.fields(struct) if not _may_be_absent(info, omit_defaults)
        }
        schema.required = sorted(always | set(schema.required or ()))
        return schema
