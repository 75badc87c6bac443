"""From a chat's choices to a job's request, and from the request to the engine's parameters."""

from __future__ import annotations

from bot.painting import EngineFeatures, chosen_size, new_request
from storage import Options, Settings


def test_a_chat_without_a_choice_gets_the_default_size_within_the_maximum() -> None:
    settings = Settings(iterations=100, max_image_size=2048)
    assert chosen_size(Options(), settings, 1024) == 1024
    assert chosen_size(Options(output_size=2048), settings, 1024) == 2048
    assert chosen_size(Options(output_size=2048), Settings(max_image_size=768), 1024) == 768
    request = new_request(Options(), settings, 1024, "lbfgs", EngineFeatures(previews=True, adain_start=True))
    assert (request.max_size, request.iterations, request.initial) == (1024, 100, "adain")
    without = new_request(Options(fast=True), settings, 1024, "lbfgs", EngineFeatures())
    assert (without.initial, without.fast) == ("content", False)
