"""One allow-listed analysis in a process of its own: ``python -m fairimage.services.federation.sandbox
MEMORY_BYTES CPU_SECONDS`` limits itself first (before it imports anything large), then reads its request
(the repository's settings, the analysis, its parameters, the images) as JSON on stdin and writes the
outputs as JSON on stdout. Its parent bounds its time and checks what it returns; an error is one line on
stderr and exit code 1. (The limits are set here, not by the parent's preexec_fn, which can deadlock a
child forked from a threaded server.)"""

from __future__ import annotations

import resource
import sys

if __name__ == "__main__":
    _memory, _cpu = int(sys.argv[1]), int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (_memory, _memory))
    resource.setrlimit(resource.RLIMIT_CPU, (_cpu, _cpu + 1))

import json  # noqa: E402 - after the limits

from fairimage.services.federation.analyses import CODE, Item  # noqa: E402
from fairimage.services.repository import connect  # noqa: E402
from fairimage.settings import Settings  # noqa: E402


def main() -> int:
    request = json.loads(sys.stdin.read())
    repository = connect(Settings.model_validate(request["settings"]))
    try:
        code = CODE[request["analysis"]]
        items = [
            Item(str(image), str(split), label and str(label)) for image, split, label in request["items"]
        ]
        outputs = code(repository, items, dict(request["parameters"]))
    except MemoryError:
        print("out of memory", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line to the parent, which records it
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        repository.close()
    json.dump(outputs, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
