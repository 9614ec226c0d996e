from typing import Literal, cast

CreateApiKeyBodyKeyType = Literal["private", "public"]

CREATE_API_KEY_BODY_KEY_TYPE_VALUES: set[CreateApiKeyBodyKeyType] = {
    "private",
    "public",
}


def check_create_api_key_body_key_type(value: str) -> CreateApiKeyBodyKeyType:
    if value in CREATE_API_KEY_BODY_KEY_TYPE_VALUES:
        return cast(CreateApiKeyBodyKeyType, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {CREATE_API_KEY_BODY_KEY_TYPE_VALUES!r}")
