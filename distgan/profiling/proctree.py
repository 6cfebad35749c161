"""CPU seconds and resident memory of a process and all its descendants, from /proc or psutil.

On Linux the tree is walked through /proc/<pid>/task/<tid>/children: the cost follows the size of the tree
(~0.05 ms a tick for a 2-process tree here). psutil (and /proc without children files) must read every process of
the machine to find the descendants (~5 ms a tick with ~230 processes: 0.5 % of a core at 1 s), so it is the
fallback for systems without those files.

Both readers count, for every live member of the tree, user + system time plus the time of its reaped children
(`children_user`/`cutime`...): without the latter, the CPU used by a child that exits between two samples would
vanish from the total. Tests compare the two readers on the same tree.
"""

import os

from distgan.errors import ConfigError


class PsutilTree:
    """The tree of `pid` through psutil (a dependency of ray[default], hence present with distgan)."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.psutil = psutil
        try:
            self.root = psutil.Process(pid)
        except psutil.NoSuchProcess as err:
            raise ConfigError(f"profiling: no process with pid {pid}") from err
        self.known: dict[int, object] = {}  # pid → Process, reused so that psutil keeps its per-process state

    def totals(self) -> tuple[float, int] | None:
        """(CPU seconds, RSS bytes) of the tree now; None once the root has exited."""
        psutil = self.psutil
        try:
            members = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return None
        self.known = {p.pid: self.known.get(p.pid, p) for p in members}
        cpu_s, rss = 0.0, 0
        for proc in self.known.values():
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    cpu_s += t.user + t.system + t.children_user + t.children_system
                    rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue  # exited (or not ours) since the tree was listed
        return cpu_s, rss


class ProcfsTree:
    """The same from /proc/<pid>/stat (Linux), without psutil: one read per process of the machine per call."""

    def __init__(self, pid: int, proc: str = "/proc") -> None:
        self.pid, self.proc = pid, proc
        self.walk_children = children_files_available(pid, proc)
        self.tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
        self.page = os.sysconf("SC_PAGE_SIZE")
        if self._stat(pid) is None:
            raise ConfigError(f"profiling: no process with pid {pid} ({proc}/{pid}/stat)")

    def _stat(self, pid: int) -> tuple[int, float, int] | None:
        """(ppid, CPU seconds incl. reaped children, RSS bytes) of one process; None if it is gone."""
        try:
            with open(f"{self.proc}/{pid}/stat", "rb") as f:
                text = f.read()
        except OSError:
            return None
        # proc(5): fields after ") " (the command name may hold spaces and parentheses) start at field 3 (state).
        fields = text[text.rindex(b")") + 2 :].split()
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])  # fields 14-17
        return int(fields[1]), (utime + stime + cutime + cstime) * self.tick_s, int(fields[21]) * self.page

    def _children(self, pid: int) -> list[int]:
        # Each thread lists the children it forked: a process's children are the union over its threads.
        found = []
        try:
            for tid in os.listdir(f"{self.proc}/{pid}/task"):
                with open(f"{self.proc}/{pid}/task/{tid}/children") as f:
                    found.extend(int(c) for c in f.read().split())
        except OSError:  # exited meanwhile (its task directory or a thread vanished)
            pass
        return found

    def totals(self) -> tuple[float, int] | None:
        """(CPU seconds, RSS bytes) of the tree now; None once the root has exited."""
        return self._walk() if self.walk_children else self._scan()

    def _walk(self) -> tuple[float, int] | None:
        cpu_s, rss, todo, seen = 0.0, 0, [self.pid], set()
        while todo:
            pid = todo.pop()
            stat = self._stat(pid)
            if stat is None or pid in seen:
                if pid == self.pid:
                    return None
                continue
            seen.add(pid)
            cpu_s += stat[1]
            rss += stat[2]
            todo.extend(self._children(pid))
        return cpu_s, rss

    def _scan(self) -> tuple[float, int] | None:
        stats = {}
        for name in os.listdir(self.proc):
            if name.isdigit() and (stat := self._stat(int(name))) is not None:
                stats[int(name)] = stat
        if self.pid not in stats:
            return None
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        cpu_s, rss, todo = 0.0, 0, [self.pid]
        while todo:
            pid = todo.pop()
            cpu_s += stats[pid][1]
            rss += stats[pid][2]
            todo.extend(children.get(pid, ()))
        return cpu_s, rss


def children_files_available(pid: int, proc: str = "/proc") -> bool:
    """Whether this kernel has /proc/<pid>/task/<tid>/children (Linux ≥ 3.5 with CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"{proc}/{pid}/task/{pid}/children")


def open_tree(pid: int):
    """/proc walked by its children files where the kernel has them; else psutil; else a scan of /proc."""
    if children_files_available(pid):
        return ProcfsTree(pid)
    try:
        import psutil  # noqa: F401
    except ImportError:
        return ProcfsTree(pid)
    return PsutilTree(pid)
