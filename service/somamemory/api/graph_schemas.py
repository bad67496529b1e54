"""Bodies of the graph routes (the seed system's shapes; extra fields are ours)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..links import DEFAULT_LINK_TYPE, Neighbor


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    from_coord: str = Field(description="The memory the link starts from.", examples=["1,2,3"])
    to_coord: str = Field(description="The memory it points to.", examples=["4,5,6"])
    link_type: str = Field(
        DEFAULT_LINK_TYPE, description="1-64 letters, digits, '_', '.', ':' or '-'."
    )
    strength: float = Field(1.0, description="Any finite number; walks prefer stronger links.")
    metadata: dict[str, Any] | None = Field(None, description="Any JSON object, up to 16 KiB.")


class LinkResponse(BaseModel):
    from_coord: str
    to_coord: str
    link_type: str
    ok: bool
    strength: float
    created: bool = Field(description="False when a link of this type existed and was updated.")
    created_at: datetime


class UnlinkResponse(BaseModel):
    from_coord: str
    to_coord: str
    link_type: str | None = Field(description="The type removed; null: every type.")
    ok: bool
    deleted: bool = Field(description="Whether a link was there to remove.")
    removed: int = Field(description="How many links were removed.")


class NeighborOut(BaseModel):
    coord: str
    hops: int = Field(description="Links between the start and this memory (1 = direct).")
    via: str = Field(description="The memory this one was reached from.")
    link_type: str
    strength: float
    metadata: dict[str, Any]

    @classmethod
    def of(cls, neighbor: Neighbor) -> NeighborOut:
        return cls(
            coord=neighbor.coord,
            hops=neighbor.hops,
            via=neighbor.via,
            link_type=neighbor.link_type,
            strength=neighbor.strength,
            metadata=neighbor.metadata,
        )


class NeighborsResponse(BaseModel):
    coord: str
    neighbors: list[NeighborOut] = Field(description="Nearest first, then strongest link first.")


class PathResponse(BaseModel):
    from_coord: str
    to_coord: str
    path: list[str] = Field(description="The memories from start to end; empty: no path.")
    link_types: list[str] = Field(description="The type of each link along the path.")
    found: bool
    hops: int | None = Field(description="Links along the path; null when none was found.")
    exhausted: bool = Field(
        description="No path was found before the search's visit budget ran out; one longer "
        "than the memories it visited may still exist."
    )
