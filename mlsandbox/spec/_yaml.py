"""Strict YAML reading for specs and recipes: a key written twice is an error, and every YAML
problem reads as one line (where it is, what is wrong). And fast YAML writing for large documents."""

from __future__ import annotations

from typing import Any

import yaml

_MERGE_TAG = "tag:yaml.org,2002:merge"
#: libyaml's emitter where PyYAML was built with it: a recipe that lists its pool's ids (thousands
#: of lines) is written in milliseconds instead of a tenth of a second; the text is the same.
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class YAMLInputError(yaml.YAMLError):
    """Text that is not valid YAML (or writes a key twice); ``str()`` is one line.

    ``line`` and ``column`` (1-based) say where, when known; ``problem`` says what is wrong.
    """

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        self.problem = problem
        self.line = line
        self.column = column
        super().__init__(f"{self.where()}: {problem}" if line is not None else problem)

    def where(self) -> str:
        """``line 3, column 1`` (or ``line 3``); empty when unknown."""
        if self.line is None:
            return ""
        return f"line {self.line}" + (f", column {self.column}" if self.column is not None else "")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping (at any depth) that writes the same key twice,
    where the plain loader lets the last one silently win. Merge keys (``<<``) still override."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class names that problem
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first at line {first.start_mark.line + 1}); "
                    "a key may appear only once in a mapping",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load_yaml(source: str | bytes) -> Any:
    """Parse YAML text (bytes: UTF-8, or UTF-16 with a BOM) with :class:`UniqueKeyLoader`.

    Raises :class:`YAMLInputError`, one line naming where and what, for anything that is not
    valid YAML, is not UTF-8, or writes a key twice.
    """
    try:
        return yaml.load(source, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.reader.ReaderError as err:
        if err.encoding == "unicode":  # the position counts characters of the decoded text
            problem = f"the character U+{err.character:04X} is not allowed in YAML"
            text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
            before: str | bytes = text[: err.position]
        else:
            problem = f"not {err.encoding.upper()} text ({err.reason} at byte {err.position})"
            before = source[: err.position]
        line = (before.count("\n") if isinstance(before, str) else before.count(b"\n")) + 1
        raise YAMLInputError(problem, line) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "not valid YAML"
        if err.context and err.problem:
            problem = f"{problem} ({err.context})"
        if mark is None:
            raise YAMLInputError(problem) from None
        raise YAMLInputError(problem, mark.line + 1, mark.column + 1) from None
    except yaml.YAMLError as err:
        raise YAMLInputError(" ".join(str(err).split())) from None


def dump_yaml(data: Any, allow_unicode: bool = False) -> str:
    """``yaml.safe_dump(data, sort_keys=False)``, through libyaml where available; ``allow_unicode``
    writes letters beyond ASCII as they are rather than escaped."""
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=allow_unicode)
