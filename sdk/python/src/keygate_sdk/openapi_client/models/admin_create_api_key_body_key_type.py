from typing import Literal, cast

AdminCreateApiKeyBodyKeyType = Literal["private", "public"]

ADMIN_CREATE_API_KEY_BODY_KEY_TYPE_VALUES: set[AdminCreateApiKeyBodyKeyType] = {
    "private",
    "public",
}


def check_admin_create_api_key_body_key_type(value: str) -> AdminCreateApiKeyBodyKeyType:
    if value in ADMIN_CREATE_API_KEY_BODY_KEY_TYPE_VALUES:
        return cast(AdminCreateApiKeyBodyKeyType, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {ADMIN_CREATE_API_KEY_BODY_KEY_TYPE_VALUES!r}")
