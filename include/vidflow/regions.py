"""The platform's viewer regions and device classes.

One list, used by the viewer API (event validation, the edge a viewer is sent to), the
traffic model (where viewers live and what they watch on), the analytics jobs (allowed
values, partitioning) and, later, the CDN (one edge per region).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Region:
    """A viewer region: its name (the partition value) and its local time zone."""

    name: str
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


REGIONS: Final[tuple[Region, ...]] = (
    Region("us-east", "America/New_York"),
    Region("eu-west", "Europe/Dublin"),
    Region("ap-south", "Asia/Kolkata"),
    Region("sa-east", "America/Sao_Paulo"),
)
REGION_NAMES: Final[tuple[str, ...]] = tuple(r.name for r in REGIONS)

RegionName = Literal["us-east", "eu-west", "ap-south", "sa-east"]
Device = Literal["phone", "desktop", "tv"]
DEVICES: Final[tuple[str, ...]] = get_args(Device)

assert get_args(RegionName) == REGION_NAMES  # one list, two spellings


def region(name: str) -> Region:
    """The region called ``name``; ValueError names the known ones."""
    for candidate in REGIONS:
        if candidate.name == name:
            return candidate
    raise ValueError(f"unknown region {name!r}; known: {', '.join(REGION_NAMES)}")
