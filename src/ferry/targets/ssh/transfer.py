"""Moving files over SFTP: missing blobs up, folders published atomically, outputs down.

Every upload goes to ``<work_dir>/tmp/`` first and is renamed into place, so a reader on the host
(another run, a crashed upload) never sees half a blob or half a folder. Blobs are uploaded
in packs the agent unpacks (many small files are bound by round trips, not bandwidth); big ones
use asyncssh's pipelined ``put``. :class:`Uploaded` counts what was sent, so "nothing changed" is checkable.

Example::

    sent, packs = await upload_blobs(sftp, ws.blobs, missing, session.work_dir)
    sent.files, sent.bytes        # (0, 0) when the host already had everything
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

SMALL = 1 << 20  # blobs below this travel in packs; bigger ones one by one
PACK_MAX = 64 << 20


@dataclass
class Uploaded:
    """What an upload sent: file count and content bytes."""

    files: int = 0
    bytes: int = 0


async def upload_blobs(
    sftp: asyncssh.SFTPClient, blobs: Any, digests: Iterable[str], work_dir: str
) -> tuple[Uploaded, list[str]]:
    """Send the local blobs ``digests`` to the host's cache; returns (what was sent, packs).

    Big blobs are put one by one, pipelined, and renamed into ``blobs/ab/cdef…`` (the shard
    folders exist: the agent made them when it listed what is missing). Small blobs travel in
    packs — ``tmp/pack-<hex>``: records of a 64-character digest, an 8-byte big-endian size and
    the bytes — which the agent unpacks (verifying each): thousands of small files cost a few
    requests instead of four round trips each.
    """
    sent = Uploaded()
    small: list[tuple[str, Path, int]] = []
    big: list[tuple[str, Path, int]] = []
    for digest in digests:
        local = Path(blobs.path(digest))
        size = local.stat().st_size
        (big if size >= SMALL else small).append((digest, local, size))
    limit = asyncio.Semaphore(4)

    async def one(digest: str, local: Path) -> None:
        final = f"{work_dir}/blobs/{digest[:2]}/{digest[2:]}"
        tmp = f"{work_dir}/tmp/{digest}.{uuid.uuid4().hex[:8]}"
        async with limit:
            size = await _put(sftp, local, tmp)  # not `sent.bytes += await …`: that reads
            sent.bytes += size  # the count before the wait and loses the others' additions
            await sftp.posix_rename(tmp, final)
        sent.files += 1

    packs: list[str] = []
    batch, batch_bytes = bytearray(), 0
    for i, (digest, local, _) in enumerate(small):
        data = local.read_bytes()
        batch += digest.encode("ascii") + len(data).to_bytes(8, "big") + data
        batch_bytes += len(data)
        sent.files += 1
        if len(batch) >= PACK_MAX or i == len(small) - 1:
            packs.append(await _send_pack(sftp, bytes(batch), work_dir))
            sent.bytes += batch_bytes
            batch, batch_bytes = bytearray(), 0
    await asyncio.gather(*(one(d, local) for d, local, _ in big))
    return sent, packs


async def _send_pack(sftp: asyncssh.SFTPClient, data: bytes, work_dir: str) -> str:
    name = f"pack-{uuid.uuid4().hex}"
    tmp = f"{work_dir}/tmp/{name}.part"
    async with sftp.open(tmp, "wb") as fh:
        await fh.write(data)
    await sftp.posix_rename(tmp, f"{work_dir}/tmp/{name}")
    return name


async def _put(sftp: asyncssh.SFTPClient, local: Path, remote: str) -> int:
    size = local.stat().st_size
    if size >= SMALL:
        await sftp.put(str(local), remote)
        return size
    data = local.read_bytes()
    async with sftp.open(remote, "wb") as fh:
        await fh.write(data)
    return len(data)


async def publish_folder(
    sftp: asyncssh.SFTPClient,
    work_dir: str,
    final: str,
    write: Callable[[asyncssh.SFTPClient, str], Awaitable[None]],
) -> bool:
    """Fill a temporary folder with ``write`` and rename it to ``final``; False if beaten to it."""
    tmp = f"{work_dir}/tmp/{os.path.basename(final)}.{uuid.uuid4().hex[:8]}"
    await sftp.makedirs(os.path.dirname(final), exist_ok=True)
    await sftp.makedirs(tmp, exist_ok=True)
    try:
        await write(sftp, tmp)
        await sftp.rename(tmp, final)
    except asyncssh.SFTPError:
        if await sftp.isdir(final):  # a concurrent run published the same content first
            await sftp.rmtree(tmp, ignore_errors=True)
            return False
        raise
    return True


async def upload_folder(
    sftp: asyncssh.SFTPClient, local: Path, work_dir: str, final: str
) -> Uploaded:
    """Publish a copy of the local folder ``local`` as ``final`` on the host."""
    sent = Uploaded()

    async def write(client: asyncssh.SFTPClient, tmp: str) -> None:
        for folder, dirs, files in os.walk(local):
            rel = os.path.relpath(folder, local)
            base = tmp if rel == "." else f"{tmp}/{Path(rel).as_posix()}"
            for name in dirs:
                await client.makedirs(f"{base}/{name}", exist_ok=True)
            for name in files:
                size = await _put(client, Path(folder, name), f"{base}/{name}")
                sent.bytes += size
                sent.files += 1

    await publish_folder(sftp, work_dir, final, write)
    return sent


async def download_folder(sftp: asyncssh.SFTPClient, remote: str, dest: Path) -> None:
    """Copy the remote folder ``remote`` to the new local folder ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    await sftp.get(remote, str(dest), recurse=True, preserve=False)
