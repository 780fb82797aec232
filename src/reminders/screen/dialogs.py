"""The review screen's dialogs: a yes / no question, and the agency picker."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from .words import say


class ConfirmDialog(ModalScreen[bool]):
    """Ask a question; dismiss with True (y, Enter on Yes) or False (n, Escape)."""

    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical {
        width: 70; max-width: 100%; height: auto; border: thick $warning; padding: 0 1;
        background: $surface;
    }
    ConfirmDialog #confirm-question { width: 100%; margin-bottom: 1; }
    ConfirmDialog Horizontal { height: auto; align-horizontal: center; }
    ConfirmDialog Button { margin: 0 2; }
    """
    BINDINGS = [  # noqa: RUF012 (Textual reads the class attribute)
        Binding("y,o", "answer(True)", "yes", show=False),
        Binding("n,escape", "answer(False)", "no", show=False),
    ]

    def __init__(self, question: str, language: str) -> None:
        super().__init__()
        self.question = question
        self.language = language

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="confirm-question", markup=False)
            with Horizontal():
                yield Button(say(self.language, "yes"), id="confirm-yes", variant="warning")
                yield Button(say(self.language, "no"), id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class AgencyPicker(ModalScreen[str | None]):
    """List the agencies; dismiss with the chosen one's code, or None on Escape."""

    DEFAULT_CSS = """
    AgencyPicker { align: center middle; }
    AgencyPicker > Vertical {
        width: 60; max-width: 100%; height: auto; max-height: 100%; border: thick $accent;
        padding: 0 1; background: $surface;
    }
    AgencyPicker #agencies { height: auto; max-height: 18; }
    """
    BINDINGS = [  # noqa: RUF012 (Textual reads the class attribute)
        Binding("escape", "cancel", "cancel", show=False),
    ]

    def __init__(self, agencies: Sequence[tuple[str, str]], title: str) -> None:
        """`agencies`: (code, name) pairs, in the configuration's order."""
        super().__init__()
        self.agencies = list(agencies)
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, id="agency-title", markup=False)
            yield OptionList(
                *(Option(Text(f"{name} ({code})"), id=code) for code, name in self.agencies),
                id="agencies",
            )

    def on_mount(self) -> None:
        self.query_one("#agencies", OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(event.option.id)
