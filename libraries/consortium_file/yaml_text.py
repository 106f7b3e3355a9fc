"""The consortium file as YAML text: read strictly, written to be read and diffed by people."""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from libraries.consortium_file.schema import Doc


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping.

    Plain YAML keeps the last one silently: a second `mon:` line would drop Monday's first hours
    without a word, which is exactly the kind of mistake a hand-edited file makes.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key; the base class reports it properly
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, filename: str = "<file>") -> Any:
    """Parse YAML text; a syntax error becomes a ValueError naming the line and column."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}, line {mark.line + 1}, column {mark.column + 1}" if mark else filename
        context, opened = exc.context or "", exc.context_mark
        if context and opened and exc.problem_mark and opened.line != exc.problem_mark.line:
            # An unclosed bracket is found at the end of the file; say where it was opened too.
            context += f" (line {opened.line + 1}, column {opened.column + 1})"
        what = ": ".join(p for p in (context, exc.problem) if p)
        raise ValueError(f"{where}: YAML syntax error: {what}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{filename}: YAML syntax error: {exc}") from exc


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Policies are Markdown pages: write them as `|` blocks, readable and diffable, not "...\n...".
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_str(value)


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    # Short lists of plain values (hours of a day, ZIP codes, languages) read best on one line.
    flow = all(_is_plain(v) for v in value) and sum(len(str(v)) + 2 for v in value) < 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _represent_dict(dumper: yaml.SafeDumper, value: dict[Any, Any]) -> yaml.MappingNode:
    # A closure or a link, {date: 2026-12-25, reason: Christmas}, on one line like the spec writes it.
    flow = len(value) <= 3 and all(_is_plain(v) for v in value.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=flow)


def _is_plain(value: Any) -> bool:
    return isinstance(value, int | dt.date) or (isinstance(value, str) and "\n" not in value)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


def dump_yaml(doc: Doc) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
