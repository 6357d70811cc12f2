"""Error reports without API keys.

Django's error pages (with DEBUG) and error mails show each frame's local variables. The
views and services that handle a key mark it sensitive, but a failure deep in the HTTP
stack shows the request headers, and the Jules client's header carries the key. This
filter hides, in every frame, any variable and any mapping entry whose name looks secret
(`API`, `KEY`, `TOKEN`, `SECRET`, `PASS`, ..., the same pattern Django uses for settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.views.debug import SafeExceptionReporterFilter


class KeySafeExceptionReporterFilter(SafeExceptionReporterFilter):
    def cleanse_setting(self, key: Any, value: Any) -> Any:
        if (
            isinstance(value, Mapping)
            and not isinstance(value, dict)
            and all(isinstance(k, str) for k in value)
        ):
            # requests' CaseInsensitiveDict and other mappings that are not dicts.
            value = dict(value)
        return super().cleanse_setting(key, value)

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self.cleanse_setting(name, value)) for name, value in variables]
