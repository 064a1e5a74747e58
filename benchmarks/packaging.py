"""Packaging memory: cutting a rendition into CMAF segments streams it.

``vidflow.media.package.cut_video`` reads the encoder's fragmented MP4 box by box and
copies each segment's byte range in 1 MiB chunks, so its peak memory does not grow with
the rendition. This benchmark proves it on real encoder output: a 20 s lossless x264
fMP4 (large per second) is remuxed (``-stream_loop``, no re-encode) into a short and a
long rendition, each is cut in a fresh process, and the process's peak RSS is compared
with a process that only imports the module (the floor) and with one that reads the file
whole, as packaging did before.

``python -m benchmarks packaging`` writes ``results/packaging.json`` and ``.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
#: Loops of the 20 s clip in the short and the long rendition.
LOOPS = (2, 16)

PROBE = r"""
import resource, sys
from pathlib import Path
from vidflow.media import package
mode, source, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
segments = 0
if mode == "cut":
    media = package.cut_video(source, out, name="720p", width=1280, height=720,
                              frame_rate=30.0, segment_seconds=6)
    segments = len(media.segments)
elif mode == "read_whole":
    data = source.read_bytes()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, segments)
"""

MOVFLAGS = "+frag_keyframe+empty_moov+default_base_moof+cmaf+skip_trailer"


def make_clip(directory: Path) -> Path:
    clip = directory / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=1280x720:rate=30:duration=20", "-c:v", "libx264",
         "-preset", "ultrafast", "-qp", "0", "-g", "60", "-f", "mp4", "-movflags", MOVFLAGS,
         str(clip)],
        check=True, timeout=600,
    )  # fmt: skip
    return clip


def loop(clip: Path, times: int, target: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-stream_loop", str(times - 1), "-i", str(clip),
         "-c", "copy", "-f", "mp4", "-movflags", MOVFLAGS, str(target)],
        check=True, timeout=600,
    )  # fmt: skip
    return target


def peak_rss_mib(mode: str, source: Path, out: Path) -> tuple[float, int]:
    """Peak RSS (MiB) of a fresh process doing ``mode`` on ``source``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode, str(source), str(out)],
        check=True, capture_output=True, text=True, env=env, timeout=1800,
    )  # fmt: skip
    kib, segments = result.stdout.split()
    return round(int(kib) / 1024, 1), int(segments)


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-packaging-") as scratch:
        directory = Path(scratch)
        clip = make_clip(directory)
        for times in LOOPS:
            source = loop(clip, times, directory / f"rendition_{times}.mp4")
            size_mib = source.stat().st_size / 2**20
            row: dict[str, Any] = {"seconds": 20 * times, "file_mib": round(size_mib, 1)}
            for mode in ("import_only", "cut", "read_whole"):
                out = directory / f"out_{times}_{mode}"
                started = time.monotonic()
                rss, segments = peak_rss_mib(mode, source, out)
                row[f"{mode}_peak_rss_mib"] = rss
                row[f"{mode}_seconds"] = round(time.monotonic() - started, 2)
                if mode == "cut":
                    row["segments"] = segments
                    cut = sum(p.stat().st_size for p in out.glob("*.m4s"))
                    row["segments_mib"] = round(cut / 2**20, 1)
            row["cut_over_floor_mib"] = round(
                row["cut_peak_rss_mib"] - row["import_only_peak_rss_mib"], 1
            )
            rows.append(row)
            source.unlink()
    result = {"benchmark": "packaging", "rows": rows, "load_average": os.getloadavg()}
    (RESULTS / "packaging.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Packaging memory (cut_video streams the rendition)",
        "",
        "| rendition | file MiB | segments | peak RSS: import only | cut_video | read whole |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['seconds']} s | {row['file_mib']} | {row['segments']} | "
            f"{row['import_only_peak_rss_mib']} MiB | {row['cut_peak_rss_mib']} MiB | "
            f"{row['read_whole_peak_rss_mib']} MiB |"
        )
    lines += ["", f"load average during the run: {result['load_average']}"]
    (RESULTS / "packaging.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
