"""Bodies and answers of ``/admin/namespaces/{namespace}/policy``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PolicyTTLs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    episodic: int | None = Field(None, description="Seconds; null clears it.")
    semantic: int | None = Field(None, description="Seconds; null clears it.")


class PolicyRequest(BaseModel):
    """Only the fields given change; null clears one (the setting applies again)."""

    model_config = ConfigDict(extra="forbid")

    default_ttl_seconds: PolicyTTLs | None = Field(
        None,
        description="Default TTL by memory type of writes that give none (1 to "
        "SOMA_MAX_TTL_SECONDS); null clears both.",
        examples=[{"episodic": 604800}],
    )
    max_memories: int | None = Field(
        None,
        description="At most this many live memories (1 to 1e9); past it the lowest effective "
        "importance is evicted at the next write. Null clears it.",
    )


class PolicyValue(BaseModel):
    value: int | None = Field(description="null: no TTL, or no cap")
    source: Literal["namespace", "settings"] = Field(
        description="namespace: the namespace's own; settings: SOMA_DEFAULT_TTL_SECONDS or "
        "SOMA_MAX_MEMORIES"
    )


class PolicyTTLValues(BaseModel):
    episodic: PolicyValue
    semantic: PolicyValue


class PolicyResponse(BaseModel):
    namespace: str
    default_ttl_seconds: PolicyTTLValues
    max_memories: PolicyValue
    updated_at: datetime | None = Field(
        None, description="The namespace's last change; null: it has no policy of its own."
    )


class PolicyCleared(BaseModel):
    namespace: str
    cleared: bool = Field(description="false: it had no policy of its own")
