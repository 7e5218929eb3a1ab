"""Which tests need root: the static reachability behind the ``root`` marker.

A test needs root when it needs images built by real tools (loop devices, FUSE, mkfs as
root) or a real device, that is when it can reach one of the *sinks* below: the build-once
image cache (``tests.imagebuild.cache.cached``), a fixture that needs root without the
cache (a repository on a real loop device), or a call only root may make (``os.mknod``, by
its name in the code). Reaching is decided from code, not from names: the test function,
every fixture it uses (pytest's own closure of fixture names), its parameters, and,
recursively, every function, class and module attribute they name in the ``tests``,
``bench`` and ``fuzz`` packages. A name that could reach a sink is taken to (over-marking
only moves a test to the slower tier; under-marking is caught at run time by
:func:`refuse_builds` in the fast tier).

Tests that need root without naming a sink in code (a subprocess that builds its own images,
a ``mount`` command, a switch to another user) carry ``pytest.mark.root`` by hand.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import inspect
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tests.imagebuild import cache, eio

#: stands for a call that needs root whatever it is given (see ``PRIVILEGED_NAMES``)
PRIVILEGED_CALL = object()
#: what needs root when called: the image cache builds images as root on a miss
SINKS: set[object] = {cache.cached, eio.failing_repository, PRIVILEGED_CALL}
#: names whose call needs root wherever they come from (``os.mknod`` of a device node): a
#: followed function that names one reaches :data:`PRIVILEGED_CALL`
PRIVILEGED_NAMES = frozenset({"mknod"})
#: packages whose code is followed (anything else is library code and reaches no sink)
FOLLOWED = ("tests.", "bench.", "fuzz.")


def _followed(obj: object) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module.startswith(FOLLOWED)


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


class Reach:
    """Memoised answers to "can this object reach a sink?"."""

    def __init__(self, sinks: Iterable[object]) -> None:
        self._sinks = {id(s) for s in sinks}
        self._seen: dict[int, bool] = {}

    def __call__(self, obj: object) -> bool:
        key = id(obj)
        if key in self._sinks:
            return True
        if key in self._seen:
            return self._seen[key]
        self._seen[key] = False  # a cycle reaches nothing new
        found = any(self(child) for child in self._children(obj))
        self._seen[key] = found
        return found

    def _children(self, obj: object) -> Iterator[object]:
        if isinstance(obj, functools.partial):
            yield obj.func
            yield from obj.args
            yield from obj.keywords.values()
        elif isinstance(obj, types.MethodType):
            yield obj.__func__
            yield obj.__self__
        elif isinstance(obj, staticmethod | classmethod):
            yield obj.__func__
        elif isinstance(obj, property):
            yield from (f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
        elif isinstance(obj, types.FunctionType):
            yield from self._function_children(obj)
        elif isinstance(obj, types.ModuleType):
            return  # modules are followed by the attribute names code uses (below)
        elif isinstance(obj, type):
            if _followed(obj):
                yield from vars(obj).values()
        elif isinstance(obj, list | tuple | set | frozenset):
            yield from obj
        elif isinstance(obj, dict):
            yield from obj.values()
        elif _followed(type(obj)):  # an instance of a test helper: its class and its state
            yield type(obj)
            if dataclasses.is_dataclass(obj):
                yield from (getattr(obj, f.name) for f in dataclasses.fields(obj))
            yield from getattr(obj, "__dict__", {}).values()

    def _function_children(self, func: types.FunctionType) -> Iterator[object]:
        func = inspect.unwrap(func)
        if not _followed(func) and id(func) not in self._sinks:
            return
        names: set[str] = set()
        for code in _code_objects(func.__code__):
            names.update(code.co_names)
        if names & PRIVILEGED_NAMES:
            yield PRIVILEGED_CALL
        scope = func.__globals__
        modules: list[types.ModuleType] = []
        for name in names:
            # a global, or a module imported in the function (``from tests.imagebuild import
            # fs_special`` names ``tests.imagebuild`` and ``fs_special``)
            value = scope.get(name, sys.modules.get(name))
            if value is None:
                continue
            yield value
            if isinstance(value, types.ModuleType):
                modules.append(value)
        # `module.attribute` (and `package.module.attribute`): the attribute names are among
        # co_names too, so every followed module reached is asked for each of them
        seen: set[str] = set()
        while modules:
            module = modules.pop()
            if module.__name__ in seen or not module.__name__.startswith(FOLLOWED):
                continue
            seen.add(module.__name__)
            for name in names:
                value = _attribute(module, name)
                if value is None:
                    continue
                yield value
                if isinstance(value, types.ModuleType):
                    modules.append(value)
        for cell in func.__closure__ or ():
            try:
                yield cell.cell_contents
            except ValueError:  # an empty cell
                continue
        yield from func.__defaults__ or ()
        yield from (func.__kwdefaults__ or {}).values()


def _attribute(module: types.ModuleType, name: str) -> object:
    """``module.name``; a submodule of a package is imported for the purpose."""
    if hasattr(module, name):
        return getattr(module, name)
    if "." in name or not hasattr(module, "__path__"):
        return None
    try:
        if importlib.util.find_spec(f"{module.__name__}.{name}") is None:
            return None
        return importlib.import_module(f"{module.__name__}.{name}")
    except ImportError:  # a name that is no submodule (find_spec may raise for those)
        return None


def needs_root(item: Any, reach: Callable[[object], bool]) -> bool:
    """Whether a collected test item needs root (see the module docstring)."""
    if item.get_closest_marker("root") is not None:
        return True
    if reach(getattr(item, "obj", None)):
        return True
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info else ():
        if any(reach(d.func) for d in defs):
            return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and any(reach(v) for v in callspec.params.values())


def refuse_builds() -> None:
    """Make the image cache refuse, everywhere it is named: in the fast tier a test that
    reaches it was not marked, which is a bug in the marking, reported by name.

    Called before collection, so modules imported later take the refusing function too."""
    original = cache.cached

    def refused(name: str, *args: object, **kwargs: object) -> Any:
        raise AssertionError(
            f"image {name!r} built by a test of the fast tier: mark it pytest.mark.root "
            "(tests/tiers.py did not see how it reaches the image cache)"
        )

    SINKS.add(refused)
    cache.cached = refused
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith(FOLLOWED):
            for attr, value in list(vars(module).items()):
                if value is original:
                    setattr(module, attr, refused)
