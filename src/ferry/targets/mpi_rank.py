"""Where :mod:`ferry.agent.mpi_rank` used to be: the rank launcher now ships in the agent's
package (SSH hosts start MPI ranks with it too); these names stay importable from here."""

from __future__ import annotations

from ferry.agent.mpi_rank import MPI_PREFIXES, in_container, main, rank_log, rank_variables

__all__ = ["MPI_PREFIXES", "in_container", "main", "rank_log", "rank_variables"]
