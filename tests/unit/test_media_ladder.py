"""Ladder planning: Apple's table, never upscaled, portrait by short side, odd sizes,
non-square pixels, frame-rate normalisation and the audio plan."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from vidflow.media.ladder import (
    APPLE_LADDER,
    AudioPlan,
    LadderRung,
    bitrate_for_pixels,
    output_frame_rate,
    plan_audio,
    plan_ladder,
)
from vidflow.media.probe import AudioStream, ProbeResult, VideoStream


def source(
    width: int,
    height: int,
    *,
    fps: Fraction = Fraction(30),
    avg: Fraction | None = None,
    sar: Fraction = Fraction(1),
    rotation: int = 0,
    audio: AudioStream | None = None,
) -> ProbeResult:
    return ProbeResult(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        size=1000,
        duration=10.0,
        bit_rate=None,
        video=VideoStream(
            index=0,
            codec="h264",
            profile="High",
            width=width,
            height=height,
            pix_fmt="yuv420p",
            bit_depth=8,
            sample_aspect_ratio=sar,
            rotation=rotation,
            frame_rate=fps,
            average_frame_rate=avg or fps,
        ),
        audio=audio,
    )


def sizes(rungs: list[LadderRung]) -> list[tuple[str, int, int]]:
    return [(r.name, r.width, r.height) for r in rungs]


def test_1080p_gets_apples_table_up_to_its_size() -> None:
    rungs = plan_ladder(source(1920, 1080))
    assert sizes(rungs) == [
        ("1080p", 1920, 1080),
        ("720p", 1280, 720),
        ("540p", 960, 540),
        ("432p", 768, 432),
        ("360p", 640, 360),
        ("234p", 416, 234),
    ]
    assert [r.max_bitrate for r in rungs] == [b for _, _, b in reversed(APPLE_LADDER[:6])]
    assert all(r.buffer_size == 2 * r.max_bitrate for r in rungs)


def test_4k_extends_the_table_with_1440p_and_2160p() -> None:
    rungs = plan_ladder(source(3840, 2160))
    assert sizes(rungs)[:3] == [
        ("2160p", 3840, 2160),
        ("1440p", 2560, 1440),
        ("1080p", 1920, 1080),
    ]
    assert rungs[0].max_bitrate > rungs[1].max_bitrate > rungs[2].max_bitrate


def test_never_upscales() -> None:
    for width, height in [(640, 360), (1280, 720), (854, 480), (320, 180), (3840, 2160)]:
        for rung in plan_ladder(source(width, height)):
            assert rung.width <= width and rung.height <= height


def test_source_between_rungs_keeps_its_own_size_rounded_to_even() -> None:
    rungs = plan_ladder(source(1101, 619))  # between 540p and 720p, odd dimensions
    assert (rungs[0].width, rungs[0].height) == (1100, 618)
    assert [r.name for r in rungs] == ["618p", "540p", "432p", "360p", "234p"]
    assert 2_000_000 < rungs[0].max_bitrate < 4_500_000


def test_a_source_just_above_a_rung_replaces_it() -> None:
    # 1920x1088 (a common encoder padding) must not yield a near-duplicate 1080p.
    assert [r.name for r in plan_ladder(source(1920, 1088))][:2] == ["1088p", "720p"]
    assert [r.name for r in plan_ladder(source(1001, 563))][:2] == ["562p", "432p"]


def test_portrait_is_laddered_by_its_short_side() -> None:
    rungs = plan_ladder(source(720, 1280))
    assert sizes(rungs) == [
        ("720p", 720, 1280),
        ("540p", 540, 960),
        ("432p", 432, 768),
        ("360p", 360, 640),
        ("234p", 234, 416),
    ]
    landscape = plan_ladder(source(1280, 720))
    assert [r.max_bitrate for r in rungs] == [r.max_bitrate for r in landscape]


def test_rotated_source_is_laddered_as_displayed() -> None:
    rungs = plan_ladder(source(1920, 1080, rotation=90))
    assert (rungs[0].width, rungs[0].height) == (1080, 1920)


def test_square_video() -> None:
    rungs = plan_ladder(source(1080, 1080))
    assert (rungs[0].width, rungs[0].height) == (1080, 1080)
    assert all(r.width == r.height for r in rungs)


def test_non_square_pixels_become_square_at_display_aspect() -> None:
    # 854x481 stored, shown at 4:3: SAR = (4/3) / (854/481).
    sar = Fraction(4, 3) / Fraction(854, 481)
    rungs = plan_ladder(source(854, 481, sar=sar))
    top = rungs[0]
    assert (top.width, top.height) == (640, 480)
    for rung in rungs:
        assert abs(rung.width / rung.height - 4 / 3) < 0.02
        assert rung.width % 2 == 0 and rung.height % 2 == 0
    assert [r.name for r in rungs] == ["480p", "432p", "360p", "234p"]


def test_anamorphic_dvd_is_stretched_not_upscaled_vertically() -> None:
    rungs = plan_ladder(source(720, 576, sar=Fraction(64, 45)))  # 16:9 PAL
    assert (rungs[0].width, rungs[0].height) == (1024, 576)


def test_tiny_source_gets_a_single_rung_of_its_own_size() -> None:
    rungs = plan_ladder(source(160, 120))
    assert sizes(rungs) == [("120p", 160, 120)]
    assert rungs[0].max_bitrate >= 64_000


def test_bitrate_follows_pixels_between_table_rows() -> None:
    assert bitrate_for_pixels(1280 * 720) == 4_500_000
    middle = bitrate_for_pixels((1280 * 720 + 1920 * 1080) // 2)
    assert 4_500_000 < middle < 7_800_000


@pytest.mark.parametrize(
    ("nominal", "expected"),
    [
        (Fraction(30), Fraction(30)),
        (Fraction(30000, 1001), Fraction(30000, 1001)),
        (Fraction(60), Fraction(60)),
        (Fraction(15), Fraction(15)),
        (Fraction(120), Fraction(60)),
        (Fraction(100), Fraction(50)),
        (Fraction(240), Fraction(60)),
        (Fraction(90), Fraction(45)),
    ],
)
def test_constant_frame_rate_is_kept_up_to_60(nominal: Fraction, expected: Fraction) -> None:
    assert output_frame_rate(source(1280, 720, fps=nominal).video) == expected


def test_variable_frame_rate_is_normalised_to_a_common_rate() -> None:
    vfr = source(1280, 720, fps=Fraction(30), avg=Fraction(1500, 89))  # drops to ~17 fps
    assert vfr.video.is_variable_frame_rate
    assert output_frame_rate(vfr.video) == Fraction(30)
    phone = source(1280, 720, fps=Fraction(90000, 1), avg=Fraction(2997, 100))
    assert output_frame_rate(phone.video) == Fraction(30000, 1001)


def test_every_rung_shares_one_frame_rate() -> None:
    rungs = plan_ladder(source(1920, 1080, fps=Fraction(60)))
    assert {r.frame_rate for r in rungs} == {Fraction(60)}
    slow = plan_ladder(source(1920, 1080, fps=Fraction(30)))
    # Low rungs get more bits at 60 fps; 540p and up keep Apple's numbers.
    by_name = {r.name: r.max_bitrate for r in slow}
    for rung in rungs:
        if rung.height < 540:
            assert rung.max_bitrate > by_name[rung.name]
        else:
            assert rung.max_bitrate == by_name[rung.name]


def test_audio_plan() -> None:
    assert plan_audio(source(640, 360)) is None
    compliant = AudioStream(1, "aac", "LC", 48000, 2, 128_000)
    assert plan_audio(source(640, 360, audio=compliant)) == AudioPlan(copy=True)
    for other in [
        AudioStream(1, "aac", "LC", 44100, 2, 128_000),
        AudioStream(1, "aac", "HE-AAC", 48000, 2, 64_000),
        AudioStream(1, "aac", "LC", 48000, 6, 384_000),
        AudioStream(1, "aac", "LC", 48000, 2, 320_000),
        AudioStream(1, "aac", "LC", 48000, 2, None),
        AudioStream(1, "opus", None, 48000, 2, 128_000),
    ]:
        plan = plan_audio(source(640, 360, audio=other))
        assert plan == AudioPlan(copy=False, bitrate=128_000, sample_rate=48_000, channels=2)


def test_rungs_round_trip_through_json() -> None:
    for rung in plan_ladder(source(1920, 1080, fps=Fraction(30000, 1001))):
        assert LadderRung.from_dict(rung.to_dict()) == rung


def test_hdr_sources_are_tone_mapped_on_every_rung() -> None:
    hdr = source(1920, 1080)
    hdr = replace(hdr, video=replace(hdr.video, color_transfer="arib-std-b67"))
    assert hdr.video.is_hdr
    assert {r.tone_map_from for r in plan_ladder(hdr)} == {"arib-std-b67"}
    sdr = source(1920, 1080)
    assert not sdr.video.is_hdr
    assert {r.tone_map_from for r in plan_ladder(sdr)} == {None}
    assert ProbeResult.from_dict(hdr.to_dict()) == hdr
