"""The data errors, in ferry's one error tree (:mod:`ferry.errors`)::

    ConfigError
    ├── AssetNotFound (ferry.tracking.assets)
    │   ├── DatastoreNotFound      no datastore of that name
    │   └── DatasetNotFound        no dataset (version) of that name or id
    ├── DataPathNotFound           a path or pattern that matches no file
    └── DatasetChanged             a registered version's file changed in its datastore
    FerryError
    ├── DatastoreUnavailable       the store cannot be reached now (retry)
    └── DatastoreAccessDenied      the store refuses the credentials

Messages name the datastore and the path, never a secret.
"""

from __future__ import annotations

from ferry.errors import ConfigError, FerryError
from ferry.tracking.assets import AssetNotFound


class DatastoreNotFound(AssetNotFound):
    """No datastore of that name in the workspace; the message lists the registered ones."""


class DatasetNotFound(AssetNotFound):
    """No dataset of that name, version or id."""


class DataPathNotFound(ConfigError):
    """A path, folder or pattern on a datastore (or a local path) that matches no file."""


class DatasetChanged(ConfigError):
    """A file of a registered dataset version is not what it was at registration (and the
    workspace does not keep the old bytes): register a new version to use the new content."""


class DatastoreUnavailable(FerryError):
    """The datastore's service cannot be reached (refused, timed out): a retry may work."""


class DatastoreAccessDenied(FerryError):
    """The datastore's service refused the credentials or the operation."""
