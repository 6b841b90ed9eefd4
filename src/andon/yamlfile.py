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


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], file: str, offset: int) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
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
            out[key] = _walk(value_node, (*loc, key), lines, file, offset)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _walk(item, (*loc, i), lines, file, offset) for i, item in enumerate(node.value)
        ]
    return _scalar(node)


_CONSTRUCTOR = yaml.SafeLoader("")


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar node (an empty value is None)."""
    value = _CONSTRUCTOR.construct_object(node, deep=True)
    _CONSTRUCTOR.constructed_objects.clear()  # one loader serves every node
    return value


def parse_yaml(text: str, file: str | Path, line_offset: int = 0) -> YamlDoc:
    """Parse one YAML document; a syntax error names the file, line and column."""
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path.name} not found", file=path) from e
    except UnicodeDecodeError as e:
        raise ConfigError("file is not UTF-8 text", file=path) from e
    return parse_yaml(text, path)
