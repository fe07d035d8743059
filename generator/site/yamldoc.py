"""The one YAML loader of the site: front matter and the fenced blocks' YAML.

Safe (PyYAML's safe loader, the C one when available) and bounded:

- no anchors (``&name``) and aliases (``*name``): a few hundred bytes of nested aliases expand
  to gigabytes ("billion laughs"), and nothing the site reads needs them;
- lists and mappings nested at most :data:`generator.textfiles.MAX_NESTING` deep (checked on
  the parser's events, before anything is built);
- a scalar that looks like a date but is none (``2024-13-45``, ``2024-02-30``) stays the text
  as written instead of failing inside PyYAML; whoever reads the value decides (``date:`` says
  it is not a date, a caption keeps the text); real dates load as ``datetime.date`` as before;
- any other value PyYAML cannot construct (``!!int abc``, a number of 5,000 digits) is a
  :class:`YamlProblem` at its line.

:func:`load_yaml` returns the data and the line of every key and list item; the callers
(:mod:`generator.site.content`, :mod:`generator.site.blocks.blockyaml`) turn a
:class:`YamlProblem` into their own ContentError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from generator.errors import excerpt, shown
from generator.textfiles import MAX_NESTING

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: A key path into the data: ``("tour", 2, "rect")``.
KeyPath = tuple[str | int, ...]


class _Loader(_Base):
    """The safe loader, with the date and construction rules of the module docstring."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as err:  # PyYAML's constructors raise ValueError, IndexError, ...
            raise ConstructorError(
                None,
                None,
                f"cannot read {shown(node.value)} as {node.tag.rsplit(':', 1)[-1]} ({err})",
                node.start_mark,
            ) from None


def _timestamp(loader: Any, node: Any) -> Any:
    try:
        return SafeConstructor.construct_yaml_timestamp(loader, node)
    except (ValueError, AttributeError):  # 2024-13-45 matches the pattern, is no date
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


class YamlProblem(Exception):
    """YAML the site refuses: ``problem`` (one sentence), ``line`` (0-based, in the text
    given), ``fix`` (None: the caller's usual advice)."""

    def __init__(self, problem: str, line: int, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        self.fix = fix


@dataclass(frozen=True)
class YamlDoc:
    """Loaded YAML: ``data`` (None for an empty text) and ``lines``, the 0-based line of each
    key and list item by its key path."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)


def load_yaml(text: str) -> YamlDoc:
    """Load one YAML document under the rules of the module docstring; raises YamlProblem."""
    _check_events(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as err:
        raise _problem(err) from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _collect(node, (), lines)
    return YamlDoc(data, lines)


def _check_events(text: str) -> None:
    """Refuse anchors, aliases and deep nesting from the parser's events (nothing built)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            line = event.start_mark.line if event.start_mark is not None else 0
            anchor = getattr(event, "anchor", None)
            if anchor is not None:  # an alias (*name) or an anchor (&name)
                alias = isinstance(event, yaml.AliasEvent)
                raise YamlProblem(
                    f"YAML {'aliases (*' if alias else 'anchors (&'}{excerpt(anchor)}) are not"
                    " allowed",
                    line,
                    fix="write the value out in full where it is used (anchors and aliases"
                    " could expand a few lines into gigabytes)",
                )
            if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    raise _too_deep(line)
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                depth -= 1
    except yaml.YAMLError as err:
        raise _problem(err) from None


def _problem(err: yaml.YAMLError) -> YamlProblem:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    line = mark.line if mark is not None else 0
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    if "nesting depth" in problem:  # libyaml's own limit (1000), met while reading ahead
        return _too_deep(line)
    return YamlProblem(problem, line)


def _too_deep(line: int) -> YamlProblem:
    return YamlProblem(
        f"lists and mappings are nested more than {MAX_NESTING} levels deep",
        line,
        fix="flatten the value (no key of the site nests more than a few levels)",
    )


def _collect(node: Any, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    """The line of every key and list item under ``node`` (depth is bounded: no recursion
    limit can be reached)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines[(*path, key.value)] = key.start_mark.line
                _collect(value, (*path, key.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line
            _collect(item, (*path, index), lines)
