"""engine_job.py's few DDP steps, plus a record of where each rank ran: run by test_multinode.py.

Every rank writes OUT.rankR.json: its rank, the world size, torchrun's node rank (GROUP_RANK), the
network namespace it ran in (/proc/self/ns/net) and MASTER_ADDR, so that the test can check that both
nodes' ranks took part. usage: multinode_job.py OUT.pt
"""

import json
import os
import sys
from pathlib import Path

from engine_job import main

from distgan.runtime import distributed

if __name__ == "__main__":
    out = Path(sys.argv[1])
    main(str(out), "ddp", 64, 1)
    record = {
        "rank": distributed.rank(),
        "world_size": distributed.world_size(),
        "node_rank": int(os.environ["GROUP_RANK"]),
        "netns": os.readlink("/proc/self/ns/net"),
        "master_addr": os.environ["MASTER_ADDR"],
    }
    path = out.with_name(f"{out.stem}.rank{record['rank']}.json")
    path.with_suffix(".tmp").write_text(json.dumps(record))
    os.replace(path.with_suffix(".tmp"), path)
    distributed.shutdown(wait_for_others=True)
    distributed.exit_process(0)
