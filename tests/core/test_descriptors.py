"""serve's open-file limit: the soft limit raised to the hard one, and caps that cannot all be
held under it refused with the numbers (issue 11 item 9). The limit is changed in a child process
only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dncgate.descriptors import RESERVE, check_budget
from dncgate.errors import ConfigError

CHILD = """
import json, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))
from dncgate.descriptors import raise_open_file_limit
files = raise_open_file_limit()
print(json.dumps([files.soft_before, files.soft, files.hard, resource.getrlimit(resource.RLIMIT_NOFILE)[0]]))
"""


def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == [256, 512, 512, 512]


def test_caps_that_fit_with_the_reserve_pass() -> None:
    check_budget({"agi.max_sessions": 512, "http.max_connections": 256}, 512 + 256 + RESERVE)


def test_caps_that_do_not_fit_are_refused_with_the_numbers() -> None:
    with pytest.raises(ConfigError) as refused:
        check_budget({"agi.max_sessions": 512, "esl.max_sessions x 2": 1024, "http.max_connections": 256}, 1024)
    message = str(refused.value)
    assert f"{512 + 1024 + 256 + RESERVE} open files" in message
    assert "agi.max_sessions 512 + esl.max_sessions x 2 1024 + http.max_connections 256" in message
    assert "open-file limit is 1024" in message
