"""Drive one side of the interoperability test: `enqueue` writes handles, `collect` reads.

Run by either implementation's interpreter:
    python interop_driver.py enqueue HANDLES.json
    python interop_driver.py collect HANDLES.json   (prints a JSON report)
"""

import json
import sys

from interop_tasks import add, fail, huey

from huey.exceptions import TaskException


def enqueue(path):
    pipeline = huey.enqueue(add.s(3, 4).then(add, 10))
    handles = {
        "plain": add(1, 2).id,
        "delayed": add.schedule((20, 22), delay=1).id,
        "failing": fail("boom").id,
        "pipeline": [result.id for result in pipeline],
    }
    with open(path, "w") as fh:
        json.dump(handles, fh)


def read(task_id):
    try:
        return {"value": huey.result(task_id, blocking=True, timeout=30)}
    except TaskException as exc:
        return {"error": str(exc), "metadata_keys": sorted(exc.metadata)}


def collect(path):
    with open(path) as fh:
        handles = json.load(fh)
    report = {
        "plain": read(handles["plain"]),
        "delayed": read(handles["delayed"]),
        "failing": read(handles["failing"]),
        "pipeline": [read(task_id) for task_id in handles["pipeline"]],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    {"enqueue": enqueue, "collect": collect}[sys.argv[1]](sys.argv[2])
