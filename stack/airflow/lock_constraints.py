"""Print the pins of a lock file for packages that are not installed yet (a pip constraints file).

Used by the Airflow image's build: the packages it adds get the lock's versions, including the
dependencies they bring in, while what the base image already has is left to pip and Airflow.
"""

import re
import sys
from importlib.metadata import distributions


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(lock_path: str) -> int:
    installed = {
        normalize(dist.metadata["Name"]) for dist in distributions() if dist.metadata["Name"]
    }
    with open(lock_path) as lock:
        for line in lock:
            pin = line.split("#", 1)[0].strip()
            if pin and normalize(pin.partition("==")[0]) not in installed:
                print(pin)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
