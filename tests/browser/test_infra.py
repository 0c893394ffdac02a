"""Smoke test of the browser-test infrastructure: a widget click is a real kernel round trip."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .lab import JupyterServer, open_and_run_notebook, save_screenshot, write_notebook

SMOKE_CELL = """\
import ipywidgets as widgets

label = widgets.Label("not clicked yet")
label.add_class("smoke-label")
button = widgets.Button(description="Click me")
button.add_class("smoke-button")


def on_click(_button):
    label.value = "clicked"


button.on_click(on_click)
widgets.VBox([button, label])
"""


def test_widget_click_round_trip(page: Page, jupyter_server: JupyterServer) -> None:
    nb = write_notebook(jupyter_server, "smoke", ["print('hello from the kernel')", SMOKE_CELL])
    open_and_run_notebook(page, jupyter_server, nb)

    output = page.locator(".jp-OutputArea-output", has_text="hello from the kernel")
    expect(output).to_be_visible()
    button = page.locator(".smoke-button")
    label = page.locator(".smoke-label")
    expect(button).to_be_visible()
    expect(label).to_have_text("not clicked yet")

    button.click()  # the kernel runs on_click and syncs label.value back to the browser
    expect(label).to_have_text("clicked", timeout=30_000)
    save_screenshot(page, "infra-smoke")
