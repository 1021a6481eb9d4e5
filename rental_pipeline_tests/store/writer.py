"""Child process for the store's crash and concurrency tests (run as a script, not collected).

ROOT is a folder or an s3:// root (credentials from the environment, as for any store).

python store_writer.py until-killed ROOT SEED
    writes versions of ``crashy`` in a loop (blobs of varied sizes, alias moves, flags)
    until the parent kills it with SIGKILL at a random moment.
python store_writer.py count ROOT WRITER N GO_FILE
    waits for GO_FILE, then writes N versions of ``shared`` with content unique to WRITER,
    printing ``ref digest`` for each so the parent can check what was committed.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from rental_pipeline.home import open_store

SIZES = (0, 10, 4_000, 60_000, 400_000)


def until_killed(root: str, seed: int) -> None:
    store = open_store(root)
    store.names()  # connected (on S3: client built), so the parent's kill lands in writes
    rng = random.Random(seed)
    print("ready", flush=True)
    step = 0
    while True:
        info = json.dumps({"seed": seed, "step": step}).encode()
        files = {"data.bin": rng.randbytes(rng.choice(SIZES)), "meta/info.json": info}
        version = store.write(
            "crashy", files, type="test", metadata={"seed": seed, "step": step}
        ).version
        if step % 3 == 0:
            store.set_alias(version.ref, "reference", reason=f"seed {seed} step {step}")
        if step % 4 == 0:
            store.mark(version.ref, "checked_at_step", step)
        step += 1


def count(root: str, writer: str, n: int, go_file: str) -> None:
    store = open_store(root)
    store.names()
    print("ready", flush=True)
    while not Path(go_file).exists():
        time.sleep(0.005)
    for i in range(n):
        files = {"data.bin": f"writer {writer} write {i}".encode() * 200}
        version = store.write("shared", files, type="test", run_id=f"writer-{writer}").version
        print(version.ref, version.digest, flush=True)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "until-killed":
        until_killed(args[0], int(args[1]))
    elif command == "count":
        count(args[0], args[1], int(args[2]), args[3])
    else:
        raise SystemExit(f"unknown command {command!r}")
