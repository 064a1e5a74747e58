"""Transcode benchmark: the video_processing DAG against one bare ffmpeg command.

``python -m benchmarks.transcode [--seconds 60]`` (or ``make bench``).

A 60-second 1080p30 source with audio (lavfi test pattern with light noise, encoded the
way a phone records: H.264 High at up to 14 Mb/s, AAC 192 kb/s) is processed twice on this
machine, in the same run:

* **baseline**: one ffmpeg process, the source read from local disk, ``split`` into the
  same ladder with the same x264 settings (capped CRF, forced aligned IDR frames) and the
  same audio, every rendition written as 6-second CMAF segments by ffmpeg's HLS muxer;
* **DAG**: the platform as it runs: the source in the originals bucket, a message on the
  processing queue in the real format, and the wall time until the catalog row says
  ``processed`` (probe, the mapped transcode tasks in the ``transcode`` pool with the posters,
  packaging, publish). A 2-second clip goes through the DAG first, untimed, so the first
  run after ``make up`` does not carry Airflow's one-off start-up.

It reports the DAG/baseline ratio (target <= 1.15), realtime factor and fps of every
transcode task (each an ffmpeg encoding a share of the ladder; from the tasks' own
measurements), a fan-out floor (the DAG's ffmpeg commands in a local pool, no Airflow),
and where the DAG's extra time goes: Airflow scheduling gaps on the critical path, work
inside the tasks other than ffmpeg (uploads, cutting, start-up) and the steps the
baseline does not have (probe, posters, publish). It also times probing the source
through a presigned URL against downloading it first.

Writes ``benchmarks/results/transcode.json`` and ``benchmarks/results/transcode.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ffmpeg
from sqlalchemy import insert

from vidflow.airflow_api import AirflowClient
from vidflow.catalog.db import session_scope
from vidflow.catalog.models import Video
from vidflow.config import Settings, get_settings
from vidflow.media import encode
from vidflow.media.encode import gop_seconds, scale_for, x264_options
from vidflow.media.ladder import plan_audio, plan_ladder
from vidflow.media.probe import probe_source
from vidflow.processing import objects
from vidflow.processing.catalog import video_state
from vidflow.processing.contracts import AUDIO, Encode
from vidflow.processing.planning import plan_encodes
from vidflow.processing.probing import planned_job
from vidflow.processing.transcoding import encode_command
from vidflow.storage import file_sha256, original_key, s3_client, sqs_client

RESULTS = Path(__file__).parent / "results"
DAG_ID = "video_processing"
TARGET_RATIO = 1.15


def make_source(path: Path, seconds: int, size: str = "1920x1080") -> None:
    video = ffmpeg.input(f"testsrc2=size={size}:rate=30:duration={seconds}", f="lavfi")
    video = video.filter("noise", alls=3, allf="t")
    audio = ffmpeg.input(f"sine=frequency=440:sample_rate=48000:duration={seconds}", f="lavfi")
    out = ffmpeg.output(
        video,
        audio,
        str(path),
        vcodec="libx264",
        preset="veryfast",
        crf=20,
        # What a phone records at 1080p30: ~12-16 Mb/s H.264 High.
        maxrate="14M",
        bufsize="28M",
        pix_fmt="yuv420p",
        acodec="aac",
        audio_bitrate="192k",
        ac=2,
    )
    subprocess.run(out.global_args("-v", "error", "-y").compile(), check=True)


def baseline_args(source: Path, out_dir: Path, settings: Settings) -> tuple[list[str], list[str]]:
    """One ffmpeg command: split into every rung, plus audio, as CMAF/HLS segments."""
    probe = probe_source(str(source), size=source.stat().st_size, max_duration=1e9)
    rungs = plan_ladder(probe)
    audio = plan_audio(probe)
    stream = ffmpeg.input(str(source))
    branches = stream["v:0"].split()
    outputs = []
    for index, rung in enumerate(rungs):
        folder = out_dir / rung.name
        folder.mkdir(parents=True)
        outputs.append(
            scale_for(branches[index], rung).output(
                str(folder / "index.m3u8"),
                **encode.hls_fmp4_options(folder, settings.segment_seconds),
                **x264_options(
                    rung,
                    segment_seconds=settings.segment_seconds,
                    preset=settings.x264_preset,
                    crf=settings.x264_crf,
                ),
            )
        )
    if audio is not None:
        folder = out_dir / "audio"
        folder.mkdir()
        audio_stream, codec = encode.audio_chain(stream["a:0"], audio)
        outputs.append(
            audio_stream.output(
                str(folder / "index.m3u8"),
                **encode.hls_fmp4_options(folder, settings.segment_seconds),
                **codec,
            )
        )
    args: list[str] = ffmpeg.merge_outputs(*outputs).global_args("-v", "error", "-y").compile()
    return args, [r.name for r in rungs] + (["audio"] if audio else [])


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time (the lower one of the middle two for an even count)."""
    ordered = sorted(runs, key=lambda run: float(run["wall_seconds"]))
    return ordered[(len(ordered) - 1) // 2]


def run_baseline(source: Path, settings: Settings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as scratch:
        args, names = baseline_args(source, Path(scratch), settings)
        started = time.monotonic()
        subprocess.run(args, check=True)
        wall = time.monotonic() - started
        segments = sum(len(list((Path(scratch) / n).glob("seg_*.m4s"))) for n in names)
    return {"wall_seconds": round(wall, 2), "renditions": names, "segments": segments}


def planned_encodes(source: Path, settings: Settings) -> list[Encode]:
    """The encodes the DAG plans for ``source`` with these settings."""
    probe = probe_source(str(source), size=source.stat().st_size, max_duration=1e9)
    job = planned_job("bench", version="bench", source_key="", probe=probe)
    return plan_encodes([job], encodes_per_video=settings.encode_groups)


def run_fanout_floor(source: Path, settings: Settings) -> dict[str, Any]:
    """The DAG's ffmpeg commands alone: one per encode, from local disk, run in a pool of
    ``transcode_pool_slots`` workers, biggest first, with no Airflow, no object store and
    no packaging. Its wall time over the baseline's is what splitting the ladder into
    several processes costs (each one decodes the source again); the DAG's wall time over
    this one is what orchestration and transfers cost."""
    encodes = planned_encodes(source, settings)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as scratch:
        commands = []
        for number, item in enumerate(encodes):
            work = Path(scratch) / str(number)
            work.mkdir()
            commands.append(encode_command(item, str(source), work, settings=settings))

        def run(args: list[str]) -> float:
            began = time.monotonic()
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return round(time.monotonic() - began, 2)

        started = time.monotonic()
        with ThreadPoolExecutor(settings.transcode_pool_slots) as pool:
            seconds = list(pool.map(run, commands))
        wall = time.monotonic() - started
    return {
        "wall_seconds": round(wall, 2),
        "processes": len(commands),
        "encodes": [item.label for item in encodes],
        # Processes that decode the source's video (an audio-only encode does not).
        "video_decodes": sum(any(r.kind != AUDIO for r in item.renditions) for item in encodes),
        "process_seconds": dict(zip((item.label for item in encodes), seconds, strict=True)),
    }


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def find_run(client: AirflowClient, video_id: str, since: float) -> str:
    runs = client.request("GET", f"/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=20")
    for run in runs["dag_runs"]:
        if (_ts(run.get("queued_at")) or 0) < since - 5:
            continue
        if video_id in client.videos_of_run(run["dag_run_id"]):
            return str(run["dag_run_id"])
    raise LookupError(f"no run processed {video_id}")


def run_dag(source: Path, settings: Settings, client: AirflowClient) -> dict[str, Any]:
    video_id = uuid.uuid4()
    with session_scope(settings) as session:
        session.execute(
            insert(Video).values(
                video_id=video_id, user_id=uuid.uuid4(), title="benchmark", status="processing"
            )
        )
    s3_client(settings).upload_file(str(source), settings.bucket_originals, original_key(video_id))
    body = json.dumps(
        {
            "video_id": str(video_id),
            "source_key": original_key(video_id),
            "size": source.stat().st_size,
            # What the upload service sends: the probe step checks the original against it.
            "sha256": file_sha256(source),
        }
    )
    sqs = sqs_client(settings)
    queue = sqs.get_queue_url(QueueName=settings.processing_queue)["QueueUrl"]
    sent = time.time()
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    while True:
        state = video_state(settings=settings, video_id=str(video_id)) or {}
        if state.get("status") in ("processed", "failed"):
            break
        time.sleep(0.5)
    done = time.time()
    if state["status"] != "processed":
        raise RuntimeError(f"benchmark video failed: {state['failure_reason']}")
    run_id = find_run(client, str(video_id), sent)
    run = client.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
    instances = client.task_instances(DAG_ID, run_id)
    tasks = []
    for ti in instances:
        tasks.append(
            {
                "task": ti["task_id"],
                "map": ti.get("rendered_map_index"),
                "map_index": ti["map_index"],
                "start": (_ts(ti.get("start_date")) or sent) - sent,
                "end": (_ts(ti.get("end_date")) or sent) - sent,
                "duration": ti.get("duration"),
                "queued": (_ts(ti.get("queued_when")) or sent) - sent,
            }
        )
    encodes = []
    for task in (t for t in tasks if t["task"] == "transcode"):
        results = client.xcom(DAG_ID, run_id, "transcode", map_index=task["map_index"])
        stats = results[0].get("stats", {})
        if stats.get("preset") != settings.x264_preset:
            raise RuntimeError(
                f"the stack encoded with x264 preset {stats.get('preset')!r}, this benchmark's "
                f"baseline with {settings.x264_preset!r}: start both with the same "
                "VIDFLOW_X264_PRESET (make up, then make bench)"
            )
        encodes.append(
            {
                "encode": stats.get("encode"),
                "renditions": [r["name"] for r in results],
                "task_seconds": round(task["duration"] or 0, 2),
                "ffmpeg_seconds": stats.get("wall_seconds"),
                "realtime_factor": stats.get("realtime_factor"),
                "fps": stats.get("fps"),
                "peak_kbps": {
                    r["name"]: round(r["summary"]["peak_bitrate"] / 1000) for r in results
                },
            }
        )
    objects.delete_prefix(
        s3_client(settings), settings.bucket_media, objects.video_prefix(str(video_id))
    )
    return {
        "video_id": str(video_id),
        "run_id": run_id,
        "wall_seconds": round(done - sent, 2),
        "run_queued_after": round((_ts(run.get("queued_at")) or sent) - sent, 2),
        "run_started_after": round((_ts(run.get("start_date")) or sent) - sent, 2),
        "tasks": sorted(tasks, key=lambda t: t["start"]),
        "encodes": sorted(encodes, key=lambda e: -(e["ffmpeg_seconds"] or 0)),
    }


def breakdown(dag: dict[str, Any]) -> dict[str, float]:
    """Where the DAG's wall time goes along its critical path."""
    tasks = dag["tasks"]

    def span(name: str) -> tuple[float, float]:
        chosen = [t for t in tasks if t["task"] == name]
        return min(t["start"] for t in chosen), max(t["end"] for t in chosen)

    phases = {}
    previous_end = 0.0
    # The wall time ends when publish commits `processed`; report runs after that.
    for name in ("probe", "transcode", "publish"):
        start, end = span(name)
        phases[f"wait before {name}"] = round(max(0.0, start - previous_end), 2)
        phases[name] = round(end - start, 2)
        previous_end = end
    in_task = sum((e["task_seconds"] or 0) - (e["ffmpeg_seconds"] or 0) for e in dag["encodes"])
    phases["transcode: work outside ffmpeg (summed over tasks)"] = round(in_task, 2)
    return phases


def decode_pass(source: Path) -> float:
    """Wall seconds of decoding the source's video once, alone: what every transcode task
    pays again (the baseline decodes once for all renditions)."""
    args = ffmpeg.input(str(source))["v:0"].output("-", f="null")
    args = args.global_args("-hide_banner", "-nostdin", "-v", "error")
    started = time.monotonic()
    subprocess.run(args.compile(), check=True)
    return round(time.monotonic() - started, 2)


def long_copy(source: Path, loops: int) -> Path:
    """The source repeated ``loops`` times without re-encoding (a long upload, quickly)."""
    target = source.with_name(f"long-{loops}.mp4")
    args = ["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(source)]
    subprocess.run([*args, "-c", "copy", str(target)], check=True)
    return target


def probe_comparison(sources: list[Path], settings: Settings) -> list[dict[str, Any]]:
    """Probe (with the decode checks) through a presigned URL vs download-then-probe, for
    each source: what the probe step costs either way as originals grow."""
    s3 = s3_client(settings)
    rows = []
    for source in sources:
        key = f"originals/bench-{uuid.uuid4()}/source"
        s3.upload_file(str(source), settings.bucket_originals, key)
        size = source.stat().st_size
        try:
            started = time.monotonic()
            url = objects.presigned_get(s3, settings.bucket_originals, key, 3600)
            probed = probe_source(url, size=size, max_duration=1e9)
            presigned = time.monotonic() - started
            with tempfile.TemporaryDirectory() as scratch:
                started = time.monotonic()
                local = Path(scratch) / "source"
                s3.download_file(settings.bucket_originals, key, str(local))
                probe_source(str(local), size=size, max_duration=1e9)
                downloaded = time.monotonic() - started
        finally:
            s3.delete_object(Bucket=settings.bucket_originals, Key=key)
        rows.append(
            {
                "bytes": size,
                "duration_seconds": round(probed.duration, 1),
                "presigned_seconds": round(presigned, 2),
                "download_seconds": round(downloaded, 2),
            }
        )
    return rows


def summary_markdown(result: dict[str, Any]) -> str:
    base, dag = result["baseline"], result["dag"]
    lines = [
        "# Transcode benchmark",
        "",
        f"{result['source']['seconds']} s 1080p30 source with audio on {result['machine']['cpus']} "
        f"CPUs, x264 preset `{result['settings']['x264_preset']}`, CRF "
        f"{result['settings']['x264_crf']}, {result['settings']['segment_seconds']} s segments, "
        f"pool `transcode` = {result['settings']['transcode_pool_slots']} slots. Load average "
        f"before/after: {result['machine']['load_average_before'][0]:.1f}/"
        f"{result['machine']['load_average_after'][0]:.1f}.",
        "",
        "| | wall time |",
        "|---|---|",
        f"| baseline: one ffmpeg, split to {len(base['renditions'])} outputs | "
        f"{base['wall_seconds']:.1f} s |",
        f"| fan-out floor: the DAG's {result['fanout_floor']['processes']} ffmpeg commands in a "
        f"local pool of {result['settings']['transcode_pool_slots']}, no Airflow | "
        f"{result['fanout_floor']['wall_seconds']:.1f} s (x{result['floor_ratio']:.2f}) |",
        f"| DAG: queue message -> `processed` (after a warm-up clip: "
        f"{result.get('dag_warm_up_seconds', 0):.1f} s) | {dag['wall_seconds']:.1f} s |",
        f"| **ratio** (target <= {TARGET_RATIO}) | **{result['ratio']:.2f}** |",
        "",
        f"Baseline and DAG ran alternately, {len(result['dag_runs'])} times each; the table "
        "gives the medians. Baseline runs: "
        + ", ".join(f"{s:.1f}" for s in result["baseline_runs"])
        + " s; DAG runs: "
        + ", ".join(f"{s:.1f}" for s in result["dag_runs"])
        + " s; ratio of each pair: "
        + ", ".join(f"{r:.2f}" for r in result["pair_ratios"])
        + ". The rest of this summary is the median DAG run.",
        "",
        "| rendition | transcode task (its encode) | task s | ffmpeg s | realtime x | fps | "
        "peak kb/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in dag["encodes"]:
        fps = f"{e['fps']:.1f}" if e["fps"] else "-"
        lines += [
            f"| {name} | {e['encode']} | {e['task_seconds']:.1f} | {e['ffmpeg_seconds']:.1f} | "
            f"{e['realtime_factor']:.2f} | {fps} | {kbps} |"
            for name, kbps in e["peak_kbps"].items()
        ]
    floor = result["fanout_floor"]
    processes = floor["processes"]
    decodes = floor.get("video_decodes", processes)
    lines += [
        "",
        "The renditions of one encode are made by one ffmpeg process in lockstep (one "
        "decode, split into their rungs), so they share its realtime factor and fps.",
        "",
        f"Overhead over the baseline: {dag['wall_seconds'] - base['wall_seconds']:.1f} s, of which",
        "",
        (
            f"- {floor['wall_seconds'] - base['wall_seconds']:.1f} s is the fan-out itself "
            f"({processes} ffmpeg processes instead of one: {decodes - 1} more "
            f"decode{'' if decodes == 2 else 's'} of the source, and the processes' shares "
            "of the ladder never end at the same moment), measured by the floor above "
            "without Airflow;"
            if processes > 1
            else f"- {floor['wall_seconds'] - base['wall_seconds']:.1f} s is the DAG's own "
            "ffmpeg command run alone (one process like the baseline; it writes fragmented "
            "MP4s and keeps the poster candidates, where the baseline writes HLS segments), "
            "measured by the floor above without Airflow;"
        ),
        f"- {dag['wall_seconds'] - floor['wall_seconds']:.1f} s is orchestration, transfers "
        "and packaging (the DAG over the floor).",
    ]
    slowest = max(dag["encodes"], key=lambda e: e["ffmpeg_seconds"] or 0)
    alone = floor.get("process_seconds", {}).get(slowest["encode"])
    if alone:
        lines += [
            "",
            f"The longest encode, {slowest['encode']}, ran {slowest['ffmpeg_seconds']:.1f} s of "
            f"ffmpeg in the DAG against {alone:.1f} s in the floor: in the DAG it shares the "
            "cores with Airflow's own processes, and reads the "
            "source over HTTP from the object store.",
        ]
    lines += ["", "Where the DAG's time goes (critical path, seconds after the message):", ""]
    lines += [f"- {name}: {seconds:.1f} s" for name, seconds in result["breakdown"].items()]
    probe = result["probe"]
    lines += [
        "",
        f"One decode of the source's video takes {result['decode_pass_seconds']:.1f} s on its "
        f"own; the DAG's encodes decode it {decodes} times, the baseline once.",
    ]
    lines += [
        "",
        "Probing an original (ffprobe plus the decode checks at both ends), through a "
        "presigned URL against downloading it first:",
        "",
        "| original | presigned URL | download, then probe |",
        "|---|---|---|",
    ]
    lines += [
        f"| {row['duration_seconds'] / 60:.1f} min, {row['bytes'] / 1e6:.0f} MB | "
        f"{row['presigned_seconds']:.2f} s | {row['download_seconds']:.2f} s |"
        for row in probe
    ]
    lines += [
        "",
        "The probe step streams through a presigned URL: it reads the index and two short "
        "windows, so its cost follows the index while a download follows the whole file "
        "(and needs the disk). Small files download slightly faster; long ones do not.",
        "",
    ]
    return "\n".join(lines)


def result_name(settings: Settings) -> str:
    """Runs at other settings than the defaults keep their own files:
    ``transcode-medium``, ``transcode-10-encodes``, ..."""
    parts = ["transcode"]
    if settings.x264_preset != Settings.model_fields["x264_preset"].default:
        parts.append(settings.x264_preset)
    if settings.encodes_per_video != Settings.model_fields["encodes_per_video"].default:
        parts.append(f"{settings.encodes_per_video}-encodes")
    return "-".join(parts)


def check_stack_plan(dag: dict[str, Any], floor: dict[str, Any]) -> None:
    """The stack must have split the ladder as this script's settings do."""
    ran = sorted(str(e["encode"]) for e in dag["encodes"])
    if ran != sorted(floor["encodes"]):
        raise RuntimeError(
            f"the stack encoded {ran}, the fan-out floor {sorted(floor['encodes'])}: start "
            "both with the same VIDFLOW_ENCODES_PER_VIDEO and VIDFLOW_TRANSCODE_POOL_SLOTS"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument(
        "--pairs", type=int, default=5, help="baseline and DAG runs, alternating (medians count)"
    )
    args = parser.parse_args()
    settings = get_settings()
    client = AirflowClient.from_settings(settings)
    client.wait_for_dag(DAG_ID)
    RESULTS.mkdir(exist_ok=True)
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-transcode-") as scratch:
        source = Path(scratch) / "source.mp4"
        print(f"generating a {args.seconds} s 1080p30 source", flush=True)
        make_source(source, args.seconds)
        print("fan-out floor: the DAG's ffmpeg commands in a local pool", flush=True)
        floor = run_fanout_floor(source, settings)
        print(f"  {floor['wall_seconds']} s", flush=True)
        # The first run after the stack starts pays one-off start-up (Airflow's workers
        # load the DAG bundle, about 2 s): a 2 s clip goes through first, so the timed
        # run measures the platform as it runs all day.
        print("DAG warm-up: a 2 s clip", flush=True)
        clip = Path(scratch) / "warm-up.mp4"
        make_source(clip, 2, size="640x360")
        warm_up = run_dag(clip, settings, client)["wall_seconds"]
        print(f"  {warm_up} s", flush=True)
        # The machine's speed drifts by 10-20% over minutes (seen here: the same baseline
        # took 48.7 to 59.8 s within an hour, the same ffmpeg command 48.7 to 56 s within
        # ten minutes), so baselines and DAG runs alternate and the medians count. Five
        # pairs: with three, one slow run moved the median ratio from 1.07 to 1.17.
        baselines, dags = [], []
        for number in range(1, args.pairs + 1):
            print(f"pair {number}/{args.pairs}: baseline, one ffmpeg command", flush=True)
            baselines.append(run_baseline(source, settings))
            print(f"  {baselines[-1]['wall_seconds']} s", flush=True)
            print(f"pair {number}/{args.pairs}: DAG, queue message -> processed", flush=True)
            dags.append(run_dag(source, settings, client))
            print(f"  {dags[-1]['wall_seconds']} s", flush=True)
        baseline, dag = median_run(baselines), median_run(dags)
        check_stack_plan(dag, floor)
        probe = probe_comparison([source, long_copy(source, loops=16)], settings)
        decode = decode_pass(source)
    result = {
        "benchmark": "transcode",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            # Other work on the machine skews both timings: recorded, not corrected.
            "load_average_before": load_before,
            "load_average_after": list(os.getloadavg()),
        },
        "settings": {
            "x264_preset": settings.x264_preset,
            "x264_crf": settings.x264_crf,
            "segment_seconds": settings.segment_seconds,
            "gop_seconds": gop_seconds(settings.segment_seconds),
            "transcode_pool_slots": settings.transcode_pool_slots,
            "encodes_per_video": settings.encode_groups,
        },
        "source": {"seconds": args.seconds, "size": "1920x1080", "fps": 30, "bytes": None},
        "baseline": baseline,
        "baseline_runs": [run["wall_seconds"] for run in baselines],
        "dag_runs": [run["wall_seconds"] for run in dags],
        "pair_ratios": [
            round(d["wall_seconds"] / b["wall_seconds"], 3)
            for b, d in zip(baselines, dags, strict=True)
        ],
        "fanout_floor": floor,
        "floor_ratio": round(floor["wall_seconds"] / baseline["wall_seconds"], 3),
        "dag_warm_up_seconds": warm_up,
        "dag": dag,
        "ratio": round(dag["wall_seconds"] / baseline["wall_seconds"], 3),
        "target_ratio": TARGET_RATIO,
        "breakdown": breakdown(dag),
        "decode_pass_seconds": decode,
        "probe": probe,
    }
    name = result_name(settings)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    summary = summary_markdown(result)
    (RESULTS / f"{name}.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
