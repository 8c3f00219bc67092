"""Tags (mutable) and properties (immutable) of a run: ``tag``, ``set_tags``, ``add_properties`` ….

Part of :class:`~.run.Run`. Values are kept as text (tags may be None); the object keeps what it
set, so ``get_tags()`` answers without a round trip, as the reference's cached ``tags`` did.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Union

from .encoding import show
from .validation import as_text, check_tag_key

Record = Dict[str, Any]


class LabelsMixin:
    """The tags-and-properties part of the run API (mixed into :class:`~.run.Run`)."""

    _id: str
    _offline: bool
    _emit: Callable[[Record], None]
    _tags: Dict[str, Optional[str]]
    _properties: Dict[str, str]

    def tag(self, key: str, value: Optional[str] = None) -> None:
        """Set one tag (mutable); ``value`` may be None."""
        key = check_tag_key(key)
        text = None if value is None else as_text(value)
        if self._offline:
            show(f"Attempted to add tag {key} with value {text}")
        self._set_tags({key: text})

    def set_tags(self, tags: Union[Mapping[str, Any], str]) -> None:
        """Set several tags from a dict (or one tag, without value, from a str)."""
        if isinstance(tags, str):
            tags = {tags: None}
        if not isinstance(tags, Mapping):
            raise TypeError(f"set_tags expects a dict of str -> str, got {type(tags).__name__}")
        clean = {check_tag_key(k): None if v is None else as_text(v) for k, v in tags.items()}
        if self._offline:
            show(f"Attempted to set tags {clean}")
        self._set_tags(clean)

    def _set_tags(self, tags: Dict[str, Optional[str]]) -> None:
        self._tags.update(tags)
        self._emit({"k": "tags", "run": self._id, "ts": time.time(), "set": tags})

    def remove_tags(self, tags: Union[Iterable[str], str]) -> None:
        """Remove tags by key."""
        keys = [check_tag_key(tags)] if isinstance(tags, str) else [check_tag_key(k) for k in tags]
        if self._offline:
            show(f"Attempted to remove tags {keys}")
        for key in keys:
            self._tags.pop(key, None)
        self._emit({"k": "untag", "run": self._id, "ts": time.time(), "keys": keys})

    def get_tags(self) -> Dict[str, Optional[str]]:
        """The run's tags, as set through this object (a copy)."""
        return dict(self._tags)

    @property
    def tags(self) -> Dict[str, Optional[str]]:
        """Same as :meth:`get_tags`."""
        return dict(self._tags)

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        """Add immutable properties: re-adding a key with another value raises ``ValueError``."""
        if not isinstance(properties, Mapping):
            raise TypeError(f"add_properties expects a dict, got {type(properties).__name__}")
        if self._offline:
            show(f"Attempted to add properties {dict(properties)}")
        new: Dict[str, str] = {}
        for key, value in properties.items():
            key = check_tag_key(key, "property")
            if value is None:
                raise TypeError(f"property {key!r} needs a value, got None")
            text = as_text(value)
            known = self._properties.get(key, new.get(key))
            if known is not None and known != text:
                raise ValueError(
                    f"property {key!r} is already {known!r}; properties are immutable, "
                    f"so it cannot become {text!r} (use a tag for values that change)"
                )
            if known is None:
                new[key] = text
        if new:
            self._properties.update(new)
            self._emit({"k": "props", "run": self._id, "ts": time.time(), "set": new})

    @property
    def properties(self) -> Dict[str, str]:
        """The properties added through this object (a copy)."""
        return dict(self._properties)

    def get_properties(self) -> Dict[str, str]:
        """Same as :attr:`properties`."""
        return dict(self._properties)
