"""``kb watch``: answer the content check from file-system events instead of a stat of every file.

At 100,000 records the check that keeps a cold ``kb query`` fresh stats ~60,000 files (kb.freshness),
~0.14 s here, most of the command. Like git's fsmonitor daemon, a watcher process keeps that check's
answer (the content's names and part digests) and recomputes it only after the kernel reports a
change in a content folder (Linux inotify); a query asks it over a local socket
(kb.freshness.watched) and falls back to stat-ing when no watcher answers.

Why it is exact, not a cache with a lifetime: inotify queues an event in the same system call that
changes a file (a write, truncate, chmod or touch, a create, delete or rename in the folder), before
that call returns; the watcher drains the queue when a query connects, so a change made before the
query started is always seen. A folder created while the watches are set up is watched and the
answer computed again; a lost event (queue overflow) or a removed folder makes the next answer a full
recompute. A content file that is a symbolic link has its target's folder watched too.

Run it as ``kb watch`` (kb.cli) beside a large knowledge base; :class:`Watcher` is the library.
"""
from __future__ import annotations

import os
import struct

from . import freshness

__all__ = ["Watcher", "supported"]

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8  # <sys/inotify.h>
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x4000, 0x8000
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
# entries added, removed or renamed, or the watched folder itself gone
_ENTRIES = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
_FOLDER_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | _ENTRIES  # anything that can change the fingerprint
_PARENT_MASK = _ENTRIES  # a top folder (content/, bib/) created, removed or renamed
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


def supported() -> bool:
    """Whether this system has inotify (Linux)."""
    return freshness.watchable()


class _Inotify:
    """The few inotify calls the watcher needs, through ctypes (no dependency)."""

    def __init__(self):
        import ctypes

        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")

    def add(self, path: str, mask: int) -> int:
        import ctypes

        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"cannot watch {path}: {os.strerror(err)}")
        return wd

    def events(self):
        """The queued events as (wd, mask, name), without waiting."""
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            i = 0
            while i + _EVENT.size <= len(data):
                wd, mask, _, length = _EVENT.unpack_from(data, i)
                name = data[i + _EVENT.size:i + _EVENT.size + length].rstrip(b"\0")
                i += _EVENT.size + length
                yield wd, mask, os.fsdecode(name)

    def close(self) -> None:
        os.close(self.fd)


class Watcher:
    """Watches the content folders ``tops`` of the store folder ``store_root`` and answers the
    content check; :meth:`serve` answers queries until :meth:`stop`.

    ``answer()`` is what a query receives: the names digest and the part digests of
    kb.freshness, equal to what the query would compute by stat-ing::

        watcher = Watcher(layout.sources, layout.store)
        sock = watcher.listen()        # OSError (EADDRINUSE) if one already watches these folders
        watcher.serve(sock)            # until watcher.stop(), e.g. from a signal handler
    """

    MAX_ROUNDS = 5  # surveys in one refresh while new folders keep appearing

    def __init__(self, tops, store_root):
        self.tops = tuple(map(str, tops))
        self.store_root = str(store_root)
        self._inotify = _Inotify()
        self._folders: set[int] = set()  # watch descriptors of content folders (and link targets')
        self._parents: dict[int, set[str]] = {}  # watch descriptor of a top's parent -> the tops' names
        self._answer: tuple[str, list[str]] | None = None
        self.dirty = True
        self.files = 0
        self.refreshes = self.served = 0  # surveys of the files; answers sent
        self._stopped = False
        for top in self.tops:
            parent, name = os.path.split(top.rstrip("/"))
            try:
                wd = self._inotify.add(parent or "/", _PARENT_MASK)
            except OSError:
                continue
            self._parents.setdefault(wd, set()).add(name)

    # -- events ---------------------------------------------------------------------------------
    def drain(self) -> None:
        """Read the queued events; any that can change the content marks the answer dirty."""
        for wd, mask, name in self._inotify.events():
            if mask & IN_Q_OVERFLOW:
                self.dirty = True
            elif wd in self._parents:
                if name in self._parents[wd] or mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                    self.dirty = True
            elif wd in self._folders:
                self.dirty = True  # ignored (folder gone) included: the next survey watches what is there
                if mask & IN_IGNORED:
                    self._folders.discard(wd)

    def answer(self) -> tuple[str, list[str]]:
        """The content's names digest and part digests, recomputed if anything changed."""
        self.drain()
        if self.dirty or self._answer is None:
            self._refresh()
        return self._answer

    def _refresh(self) -> None:
        for _ in range(self.MAX_ROUNDS):
            self.refreshes += 1
            self.dirty = False
            store = freshness.current_store(self.store_root)
            folders = freshness.survey(self.tops, freshness.read_manifest(store))
            try:
                # watch before stat-ing: a change after this point raises an event. A folder watched
                # only now may have changed since it was listed, so its answer is computed again.
                new = self._watch(folders)
                self._answer = freshness.digests(self.tops, folders)
                self.files = sum(len(f[2]) for f in folders)
            finally:
                freshness.close(folders)
            self.drain()
            if not new and not self.dirty:
                return
        self.dirty = True  # still changing: the next query computes it again

    def _watch(self, folders) -> int:
        new = 0
        for _, fd, files, _, _ in folders:
            folder = f"/proc/self/fd/{fd}"
            targets = {folder}
            for name in files:  # a linked file changes where the link points: watch that folder too
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    targets.add(os.path.dirname(os.path.realpath(path)))
            for path in targets:
                try:
                    wd = self._inotify.add(path, _FOLDER_MASK)
                except OSError:
                    continue
                if wd not in self._folders:
                    self._folders.add(wd)
                    new += 1
        return new

    # -- serving --------------------------------------------------------------------------------
    def listen(self):
        """The bound, listening socket (OSError EADDRINUSE when another watcher has these folders)."""
        import socket

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(freshness.watch_address(self.tops))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        return sock

    def serve(self, sock, on_ready=None) -> None:
        """Answer each connection on ``sock`` with the current answer until :meth:`stop`."""
        import selectors

        self.answer()
        if on_ready:
            on_ready(self)
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ, "client")
        sel.register(self._inotify.fd, selectors.EVENT_READ, "events")
        try:
            while not self._stopped:
                for key, _ in sel.select(timeout=0.5):
                    if key.data == "events":
                        self.drain()  # keep the kernel's queue short; the answer is computed on demand
                        continue
                    try:
                        conn, _ = sock.accept()
                    except OSError:
                        continue
                    with conn:
                        conn.settimeout(2.0)
                        names, parts = self.answer()
                        try:
                            conn.sendall("\n".join([freshness.WATCH_PROTOCOL, names, *parts, ""]).encode())
                            self.served += 1
                        except OSError:
                            pass
        finally:
            sel.close()

    def stop(self) -> None:
        self._stopped = True

    def close(self) -> None:
        self._inotify.close()
