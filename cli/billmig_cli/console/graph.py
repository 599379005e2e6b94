"""An execution's graph in Graphviz's DOT language, from the state machine's ASL, each state coloured by its outcome.

The console draws it in the browser with Graphviz itself (the WebAssembly build from `@viz-js/viz`, shipped as a
static asset), so the layout is Graphviz's `dot` and the nodes are real SVG elements carrying the state's outcome.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from billmig_cli.console.history import Outcome, StateSummary

# fill, border: the colours of the legend, the graph and the tables
COLOURS: dict[Outcome, tuple[str, str]] = {
    Outcome.SUCCEEDED: ("#d3f9d8", "#2b8a3e"),
    Outcome.FAILED: ("#ffe3e3", "#c92a2a"),
    Outcome.CAUGHT: ("#ffe8cc", "#d9480f"),
    Outcome.RETRIED: ("#fff3bf", "#e67700"),
    Outcome.RUNNING: ("#d0ebff", "#1864ab"),
    Outcome.NOT_REACHED: ("#f1f3f5", "#868e96"),
}
END = "__end"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def state_element_id(name: str) -> str:
    """The SVG element id of a state's node (also what the tests look for)."""
    return "state-" + _ID_UNSAFE.sub("_", name)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@dataclass
class _Builder:
    summaries: dict[str, StateSummary]
    link: str
    lines: list[str]
    clusters: int = 0

    def node(self, name: str, state: dict[str, Any]) -> None:
        summary = self.summaries.get(name)
        outcome = summary.outcome if summary else Outcome.NOT_REACHED
        fill, border = COLOURS[outcome]
        kind = state.get("Type", "?")
        mode = state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode")
        sub = kind if mode != "DISTRIBUTED" else "Distributed Map"
        if summary is not None and summary.visits:
            parts = [f"{summary.visits} run" + ("s" if summary.visits != 1 else "")]
            parts += [f"{summary.counts[o.value]} {o.value}" for o in (Outcome.CAUGHT, Outcome.FAILED, Outcome.RUNNING)]
            parts = [p for p in parts if not p.startswith("0 ")]
            if summary.retries:
                parts.append(f"{summary.retries} retr{'y' if summary.retries == 1 else 'ies'}")
            sub += " · " + " · ".join(parts)
        classes = ["state", outcome.value]
        pen = "1.4"
        if summary is not None and summary.retries and outcome is not Outcome.RETRIED:
            classes.append("with-retries")
            border, pen = COLOURS[Outcome.RETRIED][1], "3"
        style = "rounded,filled" + (",dashed" if outcome is Outcome.NOT_REACHED else "")
        tooltip = _tooltip(name, state)
        self.lines.append(
            f"{_q(name)} [id={_q(state_element_id(name))}, class={_q(' '.join(classes))}, "
            f"label={_q(name + chr(10) + sub)}, fillcolor={_q(fill)}, color={_q(border)}, penwidth={pen}, "
            f'style={_q(style)}, URL={_q(self.link + quote(name))}, target="_top", tooltip={_q(tooltip)}];'
        )

    def states(self, states: dict[str, Any], start_at: str, entry: str | None) -> list[tuple[str, str]]:
        """Draw a States object; returns the edges out of its terminal states, which the caller points onwards."""
        if entry is not None:
            self.lines.append(f"{_q(entry)} -> {_q(start_at)};")
        terminals: list[tuple[str, str]] = []
        for name, state in states.items():
            inner = _inner_graphs(state)
            if inner:
                self.clusters += 1
                cluster = f"cluster_{self.clusters}"
                self.lines.append(f"subgraph {cluster} {{")
                self.lines.append(
                    f'label={_q(name)}; style="rounded,dashed"; color="#adb5bd"; fontsize=10; fontcolor="#495057";'
                )
                self.node(name, state)
                inner_ends: list[str] = []
                for sub_states, sub_start in inner:
                    inner_ends += [tail for tail, _ in self.states(sub_states, sub_start, entry=name)]
                self.lines.append("}")
                tail, tail_attr = (inner_ends[-1], f"ltail={cluster}") if inner_ends else (name, "")
                for hidden in inner_ends[:-1]:
                    self._successors(hidden, state, terminals, style="style=invis", add_terminal=False)
                self._successors(tail, state, terminals, style=tail_attr, from_state=name)
            else:
                self.node(name, state)
                self._successors(name, state, terminals)
        return terminals

    def _successors(
        self,
        tail: str,
        state: dict[str, Any],
        terminals: list[tuple[str, str]],
        *,
        style: str = "",
        from_state: str | None = None,
        add_terminal: bool = True,
    ) -> None:
        owner = from_state or tail
        extra = f", {style}" if style else ""
        plain = f" [{style}]" if style else ""
        if "Next" in state:
            self.lines.append(f"{_q(tail)} -> {_q(state['Next'])}{plain};")
        for index, choice in enumerate(state.get("Choices", [])):
            if "Next" in choice:
                self.lines.append(f"{_q(tail)} -> {_q(choice['Next'])} [label={_q(f'rule {index + 1}')}{extra}];")
        if "Default" in state:
            self.lines.append(f'{_q(tail)} -> {_q(state["Default"])} [label="Default"{extra}];')
        for catch in state.get("Catch", []):
            errors = ", ".join(catch.get("ErrorEquals", []))
            self.lines.append(
                f"{_q(owner)} -> {_q(catch['Next'])} [label={_q('Catch ' + errors)}, style=dashed, "
                f'color="{COLOURS[Outcome.CAUGHT][1]}", fontcolor="{COLOURS[Outcome.CAUGHT][1]}"];'
            )
        if add_terminal and (state.get("End") or state.get("Type") in {"Succeed", "Fail"}):
            terminals.append((tail, plain))


def _inner_graphs(state: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    if state.get("Type") == "Map":
        processor = state.get("ItemProcessor") or state.get("Iterator") or {}
        return [(processor.get("States", {}), processor.get("StartAt", ""))] if processor.get("States") else []
    if state.get("Type") == "Parallel":
        return [(b.get("States", {}), b.get("StartAt", "")) for b in state.get("Branches", [])]
    return []


def _tooltip(name: str, state: dict[str, Any]) -> str:
    lines = [f"{name} ({state.get('Type')})"]
    if isinstance(state.get("Resource"), str):
        lines.append(state["Resource"].rsplit(":", 1)[-1])
    for retry in state.get("Retry", []):
        lines.append(f"Retry {', '.join(retry.get('ErrorEquals', []))} x{retry.get('MaxAttempts', 3)}")
    return "\n".join(lines)


def execution_dot(definition: str | dict[str, Any], summaries: dict[str, StateSummary], *, link: str) -> str:
    """DOT for a state machine definition; `link` + a state name is where a click on that state goes."""
    asl = json.loads(definition) if isinstance(definition, str) else definition
    builder = _Builder(summaries=summaries, link=link, lines=[])
    builder.lines += [
        "digraph execution {",
        'graph [rankdir=TB, compound=true, nodesep=0.35, ranksep=0.4, fontname="Helvetica", bgcolor="transparent"];',
        'node [shape=box, fontname="Helvetica", fontsize=11, margin="0.18,0.06"];',
        'edge [fontname="Helvetica", fontsize=9, color="#495057", arrowsize=0.7];',
        '"__start" [id="state-__start", label="Start", shape=oval, style=filled, fillcolor="#212529",'
        " fontcolor=white];",
        '"__end" [id="state-__end", label="End", shape=oval, style=filled, fillcolor="#212529", fontcolor=white];',
    ]
    terminals = builder.states(asl.get("States", {}), asl.get("StartAt", ""), entry="__start")
    builder.lines += [f"{_q(tail)} -> {_q(END)}{attrs};" for tail, attrs in terminals]
    builder.lines.append("}")
    return "\n".join(builder.lines)
