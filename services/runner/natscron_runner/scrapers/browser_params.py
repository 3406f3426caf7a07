"""The `browser` scraper's params: the listing params, and how to render each page.

Steps are data, checked here like everything else: a click, a fill or a wait, each on a
CSS selector, run in order once each start URL has loaded, before anything is read.
"""

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from natscron_runner.scrapers.listing_params import ListingParams, check_css

MAX_STEPS = 50
MAX_WAIT_STEP_SECONDS = 60.0


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClickStep(_Step):
    action: Literal["click"]
    selector: str = Field(min_length=1, description="CSS of the element to click")

    _css = field_validator("selector")(check_css)


class FillStep(_Step):
    action: Literal["fill"]
    selector: str = Field(min_length=1, description="CSS of the input to type into")
    value: str = Field(max_length=10_000)

    _css = field_validator("selector")(check_css)


class WaitStep(_Step):
    """Wait for `selector` to appear, or for `seconds` (one of the two)."""

    action: Literal["wait"]
    selector: str | None = Field(default=None, min_length=1)
    seconds: float | None = Field(default=None, gt=0, le=MAX_WAIT_STEP_SECONDS)

    @field_validator("selector")
    @classmethod
    def _selector_is_css(cls, selector: str | None) -> str | None:
        return None if selector is None else check_css(selector)

    @model_validator(mode="after")
    def _one_of_two(self) -> Self:
        if (self.selector is None) == (self.seconds is None):
            raise ValueError("a wait step gives one of selector or seconds")
        return self


Step = Annotated[ClickStep | FillStep | WaitStep, Field(discriminator="action")]


class BrowserParams(ListingParams):
    wait_for_selector: str | None = Field(
        default=None,
        description="CSS that must appear on each page before it is read; a page where it"
        " does not within page_timeout_seconds fails the attempt",
    )
    network_idle_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="after each load and click, wait up to this long for the network to be"
        " idle (a page that never is is read anyway); 0 does not wait",
    )
    page_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="bounds each load, wait, step and click"
    )
    load_more_selector: str | None = Field(
        default=None,
        description='CSS of a "load more" button, clicked until it is gone, adds nothing, or'
        " max_load_more clicks",
    )
    max_load_more: int = Field(default=10, ge=0, le=1000, description="clicks per start URL")
    steps: list[Step] = Field(
        default_factory=list,
        max_length=MAX_STEPS,
        description="click / fill / wait, in order, once each start URL has loaded",
    )
    screenshot_on_failure: bool = Field(
        default=True, description="a failed attempt stores a JPEG of the page with the run"
    )

    @field_validator("wait_for_selector", "load_more_selector")
    @classmethod
    def _render_selector_is_css(cls, selector: str | None) -> str | None:
        return None if selector is None else check_css(selector)
