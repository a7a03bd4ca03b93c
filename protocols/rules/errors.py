"""The one error the rule language raises: a rule file or rule set that cannot be used."""

from __future__ import annotations


class RuleError(ValueError):
    """A rule pack that does not load, naming the file, the rule and the field.

    ``str(err)`` reads ``rules/fire.yaml: rule 'confirmed-fire': when.within: must be > 0``;
    the parts are also attributes so that an API can show them in a form.
    """

    def __init__(
        self,
        detail: str,
        *,
        source: str | None = None,
        rule: str | None = None,
        field: str | None = None,
    ) -> None:
        self.detail = detail
        self.source = source
        self.rule = rule
        self.field = field
        parts = []
        if source is not None:
            parts.append(source)
        if rule is not None:
            parts.append(f"rule {rule!r}")
        if field:
            parts.append(field)
        parts.append(detail)
        super().__init__(": ".join(parts))

    @property
    def file(self) -> str | None:
        """Alias of :attr:`source` (the file name, or ``config`` for a pushed rule set)."""
        return self.source
