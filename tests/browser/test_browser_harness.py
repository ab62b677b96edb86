"""The browser harness itself: what the tests rely on when the page does something unexpected."""

from __future__ import annotations

import pytest


@pytest.fixture
def unclickable_close_buttons(page):
    """Dialog close buttons that take no clicks (as one that animates away or closes itself under the
    pointer): Playwright's click waits for them and times out."""
    style = page.page.add_style_tag(content=".p-dialog .p-dialog-close-button { pointer-events: none !important; }")
    yield
    style.evaluate("element => element.remove()")


def test_close_dialogs_falls_back_to_escape_when_a_close_button_cannot_be_clicked(page, unclickable_close_buttons):
    page.command("Comfy.ShowSettingsDialog")
    page.page.locator(".p-dialog .p-dialog-close-button").first.wait_for(state="visible")
    assert page.dialogs()

    page.close_dialogs()

    assert page.dialogs() == []
    assert page.page.locator(".p-dialog .p-dialog-close-button").count() == 0


def test_close_dialogs_with_nothing_open_leaves_the_graph_alone(page):
    loaded = page.page.evaluate("() => app.graph.nodes.length")
    assert page.dialogs() == []
    page.close_dialogs()
    assert page.dialogs() == []
    assert page.page.evaluate("() => app.graph.nodes.length") == loaded
