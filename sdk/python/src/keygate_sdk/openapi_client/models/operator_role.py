from typing import Literal, cast

OperatorRole = Literal["read", "write"]

OPERATOR_ROLE_VALUES: set[OperatorRole] = {
    "read",
    "write",
}


def check_operator_role(value: str) -> OperatorRole:
    if value in OPERATOR_ROLE_VALUES:
        return cast(OperatorRole, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {OPERATOR_ROLE_VALUES!r}")
