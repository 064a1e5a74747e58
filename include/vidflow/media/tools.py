"""Running ffmpeg and ffprobe: always with a timeout, never leaking a credential.

:func:`run_text` and :func:`run_bytes` are ``subprocess.run`` (argument list, no
shell) with a timeout. Their errors are the machine's problem, not the source's, so
the step is retried:

* :class:`ToolTimeout` when the tool ran out of time (it is killed first);
* :class:`ToolKilled` when a signal killed it (the OOM killer, a stopped worker).

Their messages name the tool and the (redacted) command, never the presigned URL:
``subprocess.TimeoutExpired`` would print the whole command line into the task log and
into the failure callback.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from vidflow.media.untrusted import redact_command


class ToolKilled(RuntimeError):
    """ffmpeg or ffprobe died from a signal (out of memory, a stopped worker): the
    machine's problem, not the source's, so the step is retried."""


class ToolTimeout(RuntimeError):
    """ffmpeg or ffprobe did not finish within its timeout and was killed."""


def raise_if_killed(tool: str, returncode: int) -> None:
    """Raise ToolKilled when ``tool`` exited by a signal (a negative return code)."""
    if returncode < 0:
        raise ToolKilled(f"{tool} was killed by signal {-returncode}")


def timed_out(args: Sequence[str], timeout: float) -> ToolTimeout:
    return ToolTimeout(
        f"{args[0]} did not finish within {timeout:g} s and was stopped: {redact_command(args)}"
    )


def run_text(args: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``args`` (stdout and stderr captured as text); raise ToolTimeout/ToolKilled.

    A non-zero exit is returned: the caller decides whose fault it is.
    """
    try:
        result = subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise timed_out(args, timeout) from None
    raise_if_killed(args[0], result.returncode)
    return result


def run_bytes(args: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[bytes]:
    """:func:`run_text` with binary stdout and stderr."""
    try:
        result = subprocess.run(list(args), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise timed_out(args, timeout) from None
    raise_if_killed(args[0], result.returncode)
    return result
