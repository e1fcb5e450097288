"""Whether the content changed since the store was built: the fingerprint of every content file.

Every reading command compares the content's fingerprint with the one its store was built from, so
this module is small and imports only ``os`` (``hashlib`` when it hashes): the ``kb`` launcher
(kb.launch) starts the check before the command line's own imports.

The fingerprint hashes every content and bib file's name, size and mtime (stat only, no reads). At
100,000 records that is ~60,000 stats, most of a cold query, so the work is kept to one stat a file:

* A build records the listing it hashed (``MANIFEST`` in the store): each folder's file names in
  the folder's own order, with the folder's inode, mtime and ctime. A folder whose stat is unchanged
  has the same entries (creating, removing or renaming an entry sets its ctime, and so does restoring
  its mtime), so its names are taken from the manifest instead of listing it again. A folder that
  changed is listed; one changed less than RACY_NS before the build listed it is always listed (a
  second change within the file system's clock tick would leave its times as they were).
* Each file is then stat-ed relative to its open folder (fstatat), never through a directory entry
  object. The files are dealt into FINGERPRINT_PARTS parts by count, not by folder (one folder may
  hold most of them), and a large knowledge base hashes its parts in forked children beside the answer
  (:func:`start`).

An edit to a file in place (same size, its folder's times restored) changes that file's mtime, so
it is seen: the folders' times only decide where the names come from.

With a watcher running (``kb watch``, kb.watch: file-system events, Linux), a large knowledge base's
check asks it over a local socket for the same digests instead of stat-ing (:func:`watched`).
"""
from __future__ import annotations

import os

FORK_FROM = 5_000  # records: below this, stat-ing the content inline costs less than forking
FINGERPRINT_PARTS = 2  # the files are dealt into this many parts, which processes can stat in parallel
SUFFIXES = (".yaml", ".yml", ".bib")
MANIFEST = "MANIFEST"
RACY_NS = 2_000_000_000  # a folder changed this close before its listing is listed again (1-2 s clocks)
_HEADER = "kb-manifest-1"
_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)


def current_store(store_root) -> str | None:
    """The path of the store readers should use under ``store_root`` (a knowledge base's store
    folder), or None before the first build."""
    link = os.path.join(store_root, "current")
    try:
        target = os.path.join(store_root, os.readlink(link))
    except OSError:
        return None
    return target if os.path.isdir(target) else None


def large(store, threshold: int | None = None) -> bool:
    """Whether the store's content is large enough for its check to run in forked children (its
    ``RECORDS`` count reaches ``threshold``, FORK_FROM by default)."""
    try:
        with open(os.path.join(store, "RECORDS"), "rb") as f:
            count = int(f.read())
    except (OSError, ValueError):  # a store from before the count: assume large
        return True
    return count >= (FORK_FROM if threshold is None else threshold)


# -- which files ------------------------------------------------------------------------------
def read_manifest(store) -> dict | None:
    """``{folder key: (stamp, files, subfolders)}`` recorded by the build of ``store``; None without one."""
    if store is None:
        return None
    try:
        with open(os.path.join(store, MANIFEST), "rb") as f:
            blocks = f.read().decode("utf-8", "surrogateescape").split("\0\0")
    except (OSError, ValueError):
        return None
    if not blocks or blocks[0] != _HEADER:
        return None
    out = {}
    try:
        for block in blocks[1:]:
            fields = block.split("\0")
            n = 3 + int(fields[2])
            out[fields[0]] = (fields[1], fields[3:n], fields[n:])
    except (IndexError, ValueError):
        return None
    return out


def manifest_text(folders) -> bytes:
    """The MANIFEST of a :func:`survey` made with ``listed_at``."""
    blocks = [_HEADER]
    for key, _, files, subs, stamp in folders:
        blocks.append("\0".join([key, stamp, str(len(files)), *files, *subs]))
    return "\0\0".join(blocks).encode("utf-8", "surrogateescape")


def survey(tops, manifest: dict | None = None, listed_at: int | None = None) -> list:
    """The folders under ``tops`` (the content and bib folders), each ``(key, fd, files, subfolders,
    stamp)`` with ``fd`` open (:func:`close` them): files in the folder's own order (stable while the
    folder is unchanged; sorting 60,000 names costs as much as stat-ing them), subfolders walked after.

    A folder whose stamp matches ``manifest`` takes its names from it. ``listed_at`` (the time, in ns,
    before the walk): a build's survey, which lists every folder and records the stamps a later
    check may trust (``-`` for a folder changed within RACY_NS of it).
    """
    folders: list = []
    for t, top in enumerate(tops):
        try:
            fd = os.open(top, _DIR)
        except OSError:
            continue
        _folder(fd, f"{t}:", manifest, listed_at, folders)
    return folders


def _folder(fd: int, key: str, manifest, listed_at, out: list) -> None:
    st = os.fstat(fd)  # before listing: a change while listing leaves a stamp that no longer matches
    stamp = f"{st.st_ino}.{st.st_mtime_ns}.{st.st_ctime_ns}"
    known = manifest.get(key) if manifest else None
    if known is not None and known[0] == stamp:
        files, subs = known[1], known[2]
    else:
        files, subs = [], []
        with os.scandir(fd) as entries:
            for entry in entries:
                name = entry.name
                if name.endswith(SUFFIXES):
                    # editor artefacts (kb.config.is_editor_artefact; a name ending in ~ has no suffix above)
                    if not name.startswith((".", "#")):
                        files.append(name)
                elif entry.is_dir(follow_symlinks=False):
                    subs.append(name)
    if listed_at is not None and st.st_ctime_ns > listed_at - RACY_NS:
        stamp = "-"
    out.append((key, fd, files, subs, stamp))
    for name in subs:
        try:
            sub = os.open(name, _DIR, dir_fd=fd)
        except OSError:
            continue
        _folder(sub, f"{key}{name}/", manifest, listed_at, out)


def close(folders) -> None:
    for folder in folders:
        try:
            os.close(folder[1])
        except OSError:
            pass


# -- hashing ----------------------------------------------------------------------------------
def names_digest(tops, folders) -> str:
    """A digest of the folders' paths and file names (what files there are)."""
    from hashlib import blake2b

    h = blake2b("\n".join(map(str, tops)).encode("utf-8", "surrogateescape"), digest_size=16)
    for key, _, files, _, _ in folders:
        h.update("\0".join([key, *files, "\n"]).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def part_digest(folders, part: int, parts: int = FINGERPRINT_PARTS) -> str:
    """A digest of the sizes and mtimes of part ``part`` of the files: of all of them taken in order,
    the ``part``-th of ``parts`` runs of equal length (a file that cannot be stat-ed counts as -1, -1)."""
    from array import array
    from hashlib import blake2b

    total = sum(len(f[2]) for f in folders)
    lo, hi = total * part // parts, total * (part + 1) // parts
    numbers = array("q")
    stat = os.stat
    start = 0
    for _, fd, files, _, _ in folders:
        a, b = max(lo - start, 0), min(hi - start, len(files))
        start += len(files)
        if a >= b:
            continue
        for name in files[a:b]:
            try:
                st = stat(name, dir_fd=fd)
            except OSError:  # a link to nothing: its presence counts, as the build reports it
                numbers.extend((-1, -1))
                continue
            numbers.extend((st.st_size, st.st_mtime_ns))
    return blake2b(numbers.tobytes(), digest_size=16).hexdigest()


def combine(prefix: str, names: str, parts) -> str:
    """The fingerprint: ``prefix`` (the store format and database), the names and the parts."""
    from hashlib import blake2b

    return blake2b("|".join([prefix, names, *parts]).encode(), digest_size=16).hexdigest()


def digests(tops, folders) -> tuple[str, list[str]]:
    """The names digest and every part digest of a :func:`survey` of ``tops``, computed here (what
    :func:`combine` joins, and what a watcher answers: :func:`watched`)."""
    return names_digest(tops, folders), [part_digest(folders, p) for p in range(FINGERPRINT_PARTS)]


def digest(tops, folders, prefix: str) -> str:
    """The fingerprint of a :func:`survey` of ``tops``, every part computed here."""
    return combine(prefix, *digests(tops, folders))


def fingerprint(tops, prefix: str, store=None) -> str:
    """The fingerprint of the files under ``tops``: from a watcher (kb watch) when the store is
    large and one runs, else computed here (names from ``store``'s manifest)."""
    if store is not None and large(store):
        known = watched(tops)
        if known is not None:
            return combine(prefix, *known)
    folders = survey(tops, read_manifest(store))
    try:
        return digest(tops, folders, prefix)
    finally:
        close(folders)


# -- from a watcher (kb watch) ----------------------------------------------------------------
WATCH_TIMEOUT = 2.0  # seconds a query waits for a watcher before stat-ing the files itself
WATCH_PROTOCOL = "kb-watch-1"


def watch_address(tops) -> str:
    """The socket of the watcher of these content folders: an abstract Unix socket (no file left
    behind, no path-length limit), named for the folders and the user.

    >>> watch_address(("/kb/content", "/kb/bib")).startswith("\\0interp-kb-watch-")
    True
    """
    from hashlib import blake2b

    key = "\n".join(map(str, tops)) + f"\n{os.getuid()}"
    return "\0interp-kb-watch-" + blake2b(key.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()


def watchable() -> bool:
    """Whether a watcher can run here: Linux (inotify, abstract sockets, SO_PEERCRED)."""
    return hasattr(os, "uname") and os.uname().sysname == "Linux"


def watched(tops) -> tuple[str, list[str]] | None:
    """The names digest and part digests of ``tops`` from a running watcher (kb.watch), or None
    when none answers (then the caller stats the files). Only a watcher run by this user is believed."""
    if not watchable():
        return None
    import socket
    import struct

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(WATCH_TIMEOUT)
        sock.connect(watch_address(tops))
        _, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        if uid != os.getuid():
            return None
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    except OSError:
        return None
    finally:
        sock.close()
    lines = data.decode("ascii", "replace").split("\n")
    if lines[:1] != [WATCH_PROTOCOL] or len(lines) != FINGERPRINT_PARTS + 3 or lines[-1] != "":
        return None
    names, *parts = lines[1:-1]
    if not all(len(d) == 32 for d in (names, *parts)):
        return None
    return names, parts


# -- beside the answer ------------------------------------------------------------------------
class Pending:
    """A fingerprint being computed by forked children, one per part; :meth:`result` waits for them."""

    def __init__(self, tops, store, folders, children, known=None):
        self.tops, self.store = tuple(map(str, tops)), store
        self._folders, self._children = folders, children
        self._known = known  # (names, parts) a watcher gave: nothing to wait for

    def result(self, prefix: str) -> str | None:
        """The fingerprint, or None unless every child wrote a whole part (then compute it inline)."""
        if self._known is not None:
            return combine(prefix, *self._known)
        try:
            names = names_digest(self.tops, self._folders)
        finally:
            close(self._folders)
        digests = []
        for pid, read in self._children:
            data = b""
            try:
                while chunk := os.read(read, 256):
                    data += chunk
            except OSError:
                data = b""
            finally:
                os.close(read)
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            digests.append(data.decode("ascii", "replace"))
        self._children = []
        if len(digests) != FINGERPRINT_PARTS or not all(len(d) == 32 for d in digests):
            return None
        return combine(prefix, names, digests)

    def abandon(self) -> None:
        """Stop the children (the check is not wanted: another knowledge base or store was read)."""
        import signal

        close(self._folders)
        for pid, read in self._children:
            os.close(read)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self._children = []


def start(tops, store) -> Pending | None:
    """Start fingerprinting the files under ``tops`` in forked children, one per part, with the
    names from ``store``'s manifest (or take the answer of a running watcher, kb watch); None where
    there is no fork (Windows) or it fails.

    Call it only in a process with one thread: forking a threaded process can deadlock the child.
    """
    known = watched(tops)
    if known is not None:
        return Pending(tops, store, [], [], known)
    if not hasattr(os, "fork"):
        return None
    import hashlib  # noqa: F401  (imported once here, not in every child)

    folders = survey(tops, read_manifest(store))
    children = []
    try:
        for part in range(FINGERPRINT_PARTS):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: hash one part, write it, and leave without running any cleanup
                try:
                    os.close(read)
                    os.write(write, part_digest(folders, part).encode())
                finally:
                    os._exit(0)
            os.close(write)
            children.append((pid, read))
    except OSError:
        Pending(tops, store, folders, children).result("")
        return None
    return Pending(tops, store, folders, children)


# -- a check started by the launcher (kb.launch) ------------------------------------------------
_started: Pending | None = None


def prestarted(pending: Pending) -> None:
    """Hand a check started before the command's imports to the KnowledgeBase that will answer."""
    global _started
    if _started is not None:
        _started.abandon()
    else:  # a command that ends before its query (a usage error) leaves no children behind
        import atexit

        atexit.register(_abandon_unclaimed)
    _started = pending


def _abandon_unclaimed() -> None:
    global _started
    pending, _started = _started, None
    if pending is not None:
        pending.abandon()


def claim(tops, store) -> Pending | None:
    """The check started by the launcher, when it is of these ``tops`` and this ``store``; a check of
    anything else is stopped (never used: its verdict would be another knowledge base's)."""
    global _started
    pending, _started = _started, None
    if pending is None:
        return None
    if pending.tops == tuple(map(str, tops)) and str(pending.store) == str(store):
        return pending
    pending.abandon()
    return None
