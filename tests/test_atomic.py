"""The cache locks of runtime/atomic.py on real flock(2) locks: a trial that finds another scoring a set does not wait
for it before training (`locked_if_free`), and a holder that dies frees the lock."""

import subprocess
import sys

from distgan.runtime.atomic import locked_if_free, made_once, maker_lock

HOLD = "import fcntl, sys, time; h = open(sys.argv[1], 'a'); fcntl.flock(h, fcntl.LOCK_EX); print('held', flush=True); "
HOLD += "time.sleep(60)"


def test_a_held_lock_is_not_free_and_a_released_one_is(tmp_path):
    lock = tmp_path / ".set.lock"
    with locked_if_free(lock) as first:
        assert first
        with locked_if_free(lock) as second:  # another open file: another holder, as another trial's process is
            assert not second
    with locked_if_free(lock) as again:
        assert again


def test_the_lock_of_a_holder_that_died_is_free_and_made_once_then_makes(tmp_path):
    made = tmp_path / "quality-set"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(maker_lock(made))], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with locked_if_free(maker_lock(made)) as free:
            assert not free
    finally:
        holder.kill()
        holder.wait()
    with locked_if_free(maker_lock(made)) as free:
        assert free
    assert made_once(made, made.mkdir) and made.is_dir()  # the maker died without making it: this call makes it
    assert not made_once(made, made.mkdir)
