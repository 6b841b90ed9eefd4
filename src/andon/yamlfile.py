"""Load YAML keeping the line of every key, so config errors can point at file:line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from andon.errors import ConfigError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class YamlDoc:
    """Plain data plus the 1-based line of each path (``("sources", "flights", "path")``)."""

    data: Any
    file: str
    lines: dict[Loc, int] = field(default_factory=dict)
    line_offset: int = 0

    def line_of(self, loc: Loc) -> int | None:
        """The line of the deepest known prefix of ``loc``."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line + self.line_offset
        return None


MAX_BYTES = 10 * 1024 * 1024
MAX_EXPANSIONS = 1000  # uses of an anchored mapping or list (a "billion laughs" has millions)


@dataclass
class _Budget:
    seen: set[int] = field(default_factory=set)
    expansions: int = 0


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], file: str, offset: int,
          budget: _Budget | None = None) -> Any:
    budget = budget or _Budget()
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in budget.seen:  # an alias: the anchored node again
            budget.expansions += 1
            if budget.expansions > MAX_EXPANSIONS:
                raise ConfigError(
                    f"more than {MAX_EXPANSIONS} YAML alias expansions",
                    file=file, line=node.start_mark.line + 1 + offset,
                    hint="aliases (*name) here expand into a huge document; write the "
                         "values out or use fewer nested aliases")
        budget.seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in out:
                first = lines[(*loc, key)]
                raise ConfigError(
                    f"duplicate key {'.'.join(str(p) for p in (*loc, key))!r}"
                    f" (first set on line {first + offset})",
                    file=file,
                    line=key_node.start_mark.line + 1 + offset,
                    hint="keep one of them: YAML would silently use the last",
                )
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, (*loc, key), lines, file, offset, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _walk(item, (*loc, i), lines, file, offset, budget)
            for i, item in enumerate(node.value)
        ]
    return _scalar(node)


_CONSTRUCTOR = yaml.SafeLoader("")


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar node (an empty value is None)."""
    value = _CONSTRUCTOR.construct_object(node, deep=True)
    _CONSTRUCTOR.constructed_objects.clear()  # one loader serves every node
    return value


def parse_yaml(text: str, file: str | Path, line_offset: int = 0) -> YamlDoc:
    """Parse one YAML document; a syntax error names the file, line and column. A document
    over ``MAX_BYTES`` or expanding aliases more than ``MAX_EXPANSIONS`` times is refused."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"YAML larger than {MAX_BYTES // (1024 * 1024)} MB", file=file,
                          hint="configuration files are small: move data to source files")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(
            f"malformed YAML: {problem}",
            file=file,
            line=(mark.line + 1 + line_offset) if mark else None,
            column=(mark.column + 1) if mark else None,
            hint="fix the YAML syntax (indentation, a missing ':' or an unclosed quote)",
        ) from e
    lines: dict[Loc, int] = {}
    data = {} if node is None else _walk(node, (), lines, str(file), line_offset)
    return YamlDoc(data=data, file=str(file), lines=lines, line_offset=line_offset)


def load_yaml(path: Path) -> YamlDoc:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{path.name} is larger than {MAX_BYTES // (1024 * 1024)} MB",
                              file=path, hint="configuration files are small: move data to "
                                              "source files")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path.name} not found", file=path) from e
    except UnicodeDecodeError as e:
        raise ConfigError("file is not UTF-8 text", file=path) from e
    return parse_yaml(text, path)
