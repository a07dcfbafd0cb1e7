"""Who a call comes from: ClearML server's identity (user, company, role and their names)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Identity:
    user: str
    company: str
    role: str = "user"
    user_name: str = ""
    company_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Identity:
        if not isinstance(data, dict) or not data.get("user") or not data.get("company"):
            raise ValueError("token missing identity")
        return cls(
            user=str(data["user"]),
            company=str(data["company"]),
            role=str(data.get("role") or "user"),
            user_name=str(data.get("user_name") or ""),
            company_name=str(data.get("company_name") or ""),
        )


__all__ = ["Identity"]
