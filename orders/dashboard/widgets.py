"""Form widgets of the dashboard that render without the template engine.

Django's stock Select renders one template per <option>, and a
ModelChoiceField builds a model instance per option. The order list's filter
offers every product and client: at 200 products those options took more
than half of the page's time (see bench/README.md). QuickSelect writes the
same HTML in Python, from (pk, label) rows when given `label_field`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from html import escape
from typing import Any

from django import forms
from django.forms.models import ModelChoiceIterator
from django.forms.utils import flatatt
from django.utils.safestring import SafeString, mark_safe


class QuickSelect(forms.Select):
    """A single <select>: the same HTML as forms.Select, built in Python.

    With `label_field`, a ModelChoiceField's options are read as
    ``values_list("pk", label_field)``, so its label must be that field.
    """

    def __init__(
        self, attrs: dict[str, Any] | None = None, choices: Iterable[Any] = (), *, label_field=""
    ) -> None:
        super().__init__(attrs, choices)
        self.label_field = label_field

    def _options(self) -> Iterator[tuple[Any, Any]]:
        choices = self.choices
        if (
            self.label_field
            and isinstance(choices, ModelChoiceIterator)
            and choices.queryset is not None
        ):
            field = choices.field
            if field.empty_label is not None:
                yield "", field.empty_label
            yield from choices.queryset.values_list("pk", self.label_field)
            return
        yield from choices

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        if self.allow_multiple_selected:
            return super().render(name, value, attrs, renderer)
        final_attrs = self.build_attrs(self.attrs, attrs)
        selected = set(self.format_value(value))
        html = [f'<select name="{escape(name)}"{flatatt(final_attrs)}>']
        for option_value, label in self._options():
            if isinstance(label, (list, tuple)):  # an optgroup: the stock widget knows those
                return super().render(name, value, attrs, renderer)
            text = "" if option_value is None else str(option_value)
            mark = " selected" if text in selected else ""
            html.append(f'<option value="{escape(text)}"{mark}>{escape(str(label))}</option>')
        html.append("</select>")
        # Safe: flatatt escapes the attributes; the name and every value and label is escaped above.
        return mark_safe("".join(html))  # noqa: S308
