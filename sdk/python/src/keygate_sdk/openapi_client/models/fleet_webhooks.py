from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="FleetWebhooks")


@_attrs_define
class FleetWebhooks:
    """
    Attributes:
        enabled (bool):
        endpoints (int):
        failing (int):
        disabled (int):
        dead_letters (int):
    """

    enabled: bool
    endpoints: int
    failing: int
    disabled: int
    dead_letters: int

    def to_dict(self) -> dict[str, Any]:
        enabled = self.enabled

        endpoints = self.endpoints

        failing = self.failing

        disabled = self.disabled

        dead_letters = self.dead_letters

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "enabled": enabled,
                "endpoints": endpoints,
                "failing": failing,
                "disabled": disabled,
                "deadLetters": dead_letters,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        enabled = d.pop("enabled")

        endpoints = d.pop("endpoints")

        failing = d.pop("failing")

        disabled = d.pop("disabled")

        dead_letters = d.pop("deadLetters")

        fleet_webhooks = cls(
            enabled=enabled,
            endpoints=endpoints,
            failing=failing,
            disabled=disabled,
            dead_letters=dead_letters,
        )

        return fleet_webhooks
