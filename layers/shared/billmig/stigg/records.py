"""The records of Stigg's bulk-import files, exactly as its guide and its `@stigg/bulk-import` CLI define them.

Field names are the guide's (camelCase) so operators can reuse files they already prepared for Stigg's own CLI. Each
model forbids unknown keys: a misspelled field is reported, never silently dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

RecordId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^\S(.*\S)?$")]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class CustomerRecord(_Record):
    customer_id: RecordId = Field(alias="customerId")
    email: str | None = None
    name: str | None = None
    billing_id: str | None = Field(default=None, alias="billingId")
    payment_method_id: str | None = Field(default=None, alias="paymentMethodId")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    metadata: dict[str, Any] | None = Field(
        default=None,
        validation_alias=AliasChoices("metadata", "additionalMetaData"),
        serialization_alias="additionalMetaData",
    )

    @property
    def key(self) -> str:
        return self.customer_id

    @field_validator("updated_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2022-01-01T00:00:00.000Z")
        return value


class EntitlementRecord(_Record):
    feature_id: RecordId = Field(alias="featureId")
    usage_limit: float | None = Field(default=None, alias="usageLimit", ge=0)
    has_unlimited_usage: bool | None = Field(default=None, alias="hasUnlimitedUsage")
    has_soft_limit: bool | None = Field(default=None, alias="hasSoftLimit")
    reset_period: Literal["YEAR", "MONTH", "WEEK", "DAY", "HOUR"] | None = Field(default=None, alias="resetPeriod")
    description: str | None = None


class AddonRecord(_Record):
    addon_id: RecordId = Field(alias="addonId")
    quantity: int = Field(default=1, ge=1)


class SubscriptionRecord(_Record):
    customer_id: RecordId = Field(alias="customerId")
    plan_id: RecordId = Field(alias="planId")
    resource_id: str | None = Field(default=None, alias="resourceId", min_length=1)
    subscription_id: str | None = Field(default=None, alias="subscriptionId", min_length=1, max_length=255)
    billing_id: str | None = Field(default=None, alias="billingId")
    billing_period: Literal["MONTHLY", "ANNUALLY"] | None = Field(default=None, alias="billingPeriod")
    unit_quantity: float | None = Field(default=None, alias="unitQuantity", ge=0)
    start_date: datetime | None = Field(default=None, alias="startDate")
    end_date: datetime | None = Field(default=None, alias="endDate")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    subscription_entitlements: tuple[EntitlementRecord, ...] = Field(
        default=(),
        validation_alias=AliasChoices("subscriptionEntitlements", "entitlements"),
        serialization_alias="subscriptionEntitlements",
    )
    addons: tuple[AddonRecord, ...] = ()
    metadata: dict[str, Any] | None = Field(
        default=None,
        validation_alias=AliasChoices("additionalMetaData", "metadata"),
        serialization_alias="additionalMetaData",
    )

    @property
    def key(self) -> str:
        """One subscription per customer, resource and plan: what Stigg itself allows for a product."""
        return f"{self.customer_id}/{self.resource_id or '-'}/{self.plan_id}"

    @field_validator("start_date", "end_date", "updated_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2022-01-01T00:00:00.000Z")
        return value


class UsageRecord(_Record):
    customer_id: RecordId = Field(alias="customerId")
    feature_id: RecordId = Field(alias="featureId")
    resource_id: str | None = Field(default=None, alias="resourceId", min_length=1)
    usage: float = Field(ge=0)

    @property
    def key(self) -> str:
        return f"{self.customer_id}/{self.resource_id or '-'}/{self.feature_id}"
