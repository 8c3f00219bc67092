"""Child runs: ``child_run``, ``create_children`` and ``get_children``.

Part of :class:`~.run.Run`. A child is announced with one ``child`` record (it is Running from
then on); its own records carry its id. Child ids are ``<experiment>_<unix seconds>_<8 hex>``
inside a job (unique across processes) and ``<parent id>.<name>`` offline, as in the reference.
"""

from __future__ import annotations

import operator
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Union,
    cast,
)

from . import history
from .validation import check_run_id, check_tag_key

if TYPE_CHECKING:
    from .run import JobRun

Record = Dict[str, Any]
MAX_CHILDREN = 100
BATCH_CHILD_TAG = "azureml.batch_child_number"


class ChildrenMixin:
    """The child-run half of the run API (mixed into :class:`~.run.Run`)."""

    _id: str
    _emit: Callable[[Record], None]
    _family: Dict[str, JobRun]
    _tags: Dict[str, Optional[str]]
    _properties: Dict[str, str]
    _status: str

    def _records(self) -> List[Record]:
        raise NotImplementedError

    def _spawn(self, run_id: str, name: Optional[str], parent: JobRun) -> JobRun:
        raise NotImplementedError

    def _new_run_id(self, name: Optional[str]) -> str:
        raise NotImplementedError

    def child_run(
        self, name: Optional[str] = None, run_id: Optional[str] = None, outputs: Any = None
    ) -> JobRun:
        """Create and start a child run; use it as a context manager.

        On leaving the ``with`` block the child is Completed, or Failed with the exception's
        text (Canceled on ``KeyboardInterrupt``). ``outputs`` is accepted and ignored.

        Example::

            with run.child_run("fold-1") as child:
                child.log("acc", 0.9)
        """
        if name is not None and not isinstance(name, str):
            raise TypeError(f"a child run name must be a str, got {type(name).__name__}")
        return self._start_child(name, run_id, {})

    def create_children(
        self,
        count: Optional[int] = None,
        tag_key: Optional[str] = None,
        tag_values: Optional[Iterable[str]] = None,
    ) -> List[JobRun]:
        """Create up to 100 children at once, from ``count`` or from ``tag_key``+``tag_values``.

        With ``count`` each child gets tag ``azureml.batch_child_number`` = ``"0"`` … ``"n-1"``;
        with ``tag_key``/``tag_values`` each child gets ``tag_key`` = one of the values.
        """
        if count is not None:
            if tag_key is not None or tag_values is not None:
                raise ValueError(
                    "create_children takes either count= or tag_key= with tag_values=, not both"
                )
            if isinstance(count, bool):
                raise TypeError("create_children count must be an int, got bool")
            number = operator.index(count)
            if not 0 <= number <= MAX_CHILDREN:
                raise ValueError(
                    f"create_children count must be between 0 and {MAX_CHILDREN}, got {number}"
                )
            tag_sets: List[Dict[str, Optional[str]]] = [
                {BATCH_CHILD_TAG: str(i)} for i in range(number)
            ]
        else:
            if tag_key is None or tag_values is None:
                raise ValueError(
                    "create_children needs count=, or tag_key= together with tag_values="
                )
            if isinstance(tag_values, (str, bytes)):
                raise TypeError("create_children tag_values must be a list of str, not a str")
            key = check_tag_key(tag_key)
            tag_sets = [{key: str(value)} for value in tag_values]
        if len(tag_sets) > MAX_CHILDREN:
            raise ValueError(
                f"create_children creates at most {MAX_CHILDREN} children per call, "
                f"got {len(tag_sets)} tag values"
            )
        return [self._start_child(None, None, tags) for tags in tag_sets]

    def _start_child(
        self, name: Optional[str], run_id: Optional[str], tags: Dict[str, Optional[str]]
    ) -> JobRun:
        child_id = check_run_id(run_id) if run_id is not None else self._new_run_id(name)
        child = self._spawn(child_id, name, self._self())
        child._tags.update(tags)
        self._emit(
            {
                "k": "child",
                "run": child_id,
                "ts": time.time(),
                "parent": self._id,
                "name": name,
                "tags": dict(tags),
            }
        )
        return child

    def _self(self) -> JobRun:
        return cast("JobRun", self)

    def get_children(
        self,
        recursive: bool = False,
        tags: Union[str, Iterable[str], Mapping[str, Optional[str]], None] = None,
        properties: Optional[Mapping[str, str]] = None,
        status: Optional[str] = None,
    ) -> List[JobRun]:
        """This run's children (all descendants with ``recursive=True``), in creation order.

        Children created by other processes of the job are included (read from the spool).
        Filters: ``tags`` (a key, a list of keys, or a dict of key → value, None meaning any
        value), ``properties`` (a dict that must match) and ``status``.
        """
        runs = history.fold(self._records())
        if self._id not in runs:
            return []
        ids = history.descendants(runs, self._id) if recursive else runs[self._id].children
        found = []
        for child_id in ids:
            child = self._family.get(child_id) or self._adopt(runs[child_id])
            if _matches(child, tags, properties, status):
                found.append(child)
        return found

    def _adopt(self, state: history.RunState) -> JobRun:
        """A run object for a child that another process (or an earlier object) created."""
        parent = self._family.get(state.parent or "") or self._self()
        child = self._spawn(state.run_id, state.name, parent)
        child._tags.update(state.tags)
        child._properties.update(state.properties)
        child._status = state.status
        return child


def _matches(
    run: JobRun,
    tags: Union[str, Iterable[str], Mapping[str, Optional[str]], None],
    properties: Optional[Mapping[str, str]],
    status: Optional[str],
) -> bool:
    if status is not None and run.get_status() != status:
        return False
    have = run.get_tags()
    if isinstance(tags, str):
        tags = [tags]
    if isinstance(tags, Mapping):
        for key, value in tags.items():
            if key not in have or (value is not None and have[key] != value):
                return False
    elif tags is not None and any(key not in have for key in tags):
        return False
    if properties:
        props = run.get_properties()
        return all(props.get(key) == value for key, value in properties.items())
    return True
