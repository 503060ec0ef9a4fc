"""Option parity and honest --help: every net option of ``analyze`` exists in ``diff`` and
two-net ``plot`` for both nets and per side; every command's --help shows its defaults and
lists each option once; the commands with a table take every --format."""

from __future__ import annotations

import argparse
import re

import pytest

from caffemem.cli import COMMANDS, build_parser

#: options that describe the machine (or analyze's own output), not how a net is built or run
MACHINE = {"--gpu-mem", "--host-mem", "--cudnn-workspace-mib", "--context-mib", "--cuda"}
NET_GROUPS = ("building the net", "memory model")


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def net_options(p: argparse.ArgumentParser) -> list[str]:
    """The long options in ``p``'s net-building and memory-model groups."""
    out = []
    for g in p._action_groups:
        if g.title in NET_GROUPS:
            out += [s for a in g._group_actions for s in a.option_strings if s.startswith("--")]
    return out


def long_options(p: argparse.ArgumentParser) -> set[str]:
    return {s for a in p._actions for s in a.option_strings}


def test_analyze_net_options_exist_per_side_in_diff_and_plot():
    subs = subparsers()
    wanted = [o for o in net_options(subs["analyze"]) if o not in MACHINE]
    assert {"--input", "--batch", "--phase", "--stage", "--level", "--until", "--scenario",
            "--mode", "--engine", "--solver-type"} <= set(wanted)
    for cmd in ("diff", "plot"):
        have = long_options(subs[cmd])
        for opt in wanted:
            name = opt[2:]
            for form in (opt, f"--old-{name}", f"--new-{name}"):
                assert form in have, f"{cmd} lacks {form}"
        assert MACHINE <= have


def test_side_options_reach_their_side(tmp_path):
    from caffemem.commands.common import analysis_options, memory_env
    from caffemem.loader import load

    from conftest import SAMPLES

    args = subparsers()["diff"].parse_args(
        ["a", "b", "--input", "data=2,3,8,8", "--new-input", "data=4,3,8,8", "--old-batch", "5",
         "--phase", "test", "--new-phase", "TRAIN", "--old-engine", "caffe", "--scenario", "time"])
    old, new = analysis_options(args, "old"), analysis_options(args, "new")
    assert old.inputs["data"] == (2, 3, 8, 8) and new.inputs["data"] == (4, 3, 8, 8)
    assert old.batch == 5 and new.batch is None
    assert old.phase == "TEST" and new.phase == "TRAIN"
    loaded = load(str(SAMPLES / "small_cnn_train.prototxt"))
    assert memory_env(args, loaded, None, "old").engine == "caffe"
    assert memory_env(args, loaded, None, "new").engine == "cudnn"
    assert memory_env(args, loaded, None, "new").scenario == "time"


@pytest.mark.parametrize("cmd", [c for c in COMMANDS if c != "log"])
def test_help_shows_every_default_once(cmd):
    p = subparsers()[cmd]
    text = p.format_help()
    for a in p._actions:
        if not a.option_strings or isinstance(a, (argparse._HelpAction, argparse._VersionAction)):
            continue
        flag = isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction))
        if flag or a.required:
            continue
        helptext = (a.help or "") % {"default": a.default} if a.help else ""
        assert "default" in helptext.lower(), f"{cmd} {a.option_strings[0]}: no default in --help"
        if a.default not in (None, [], False):
            assert str(a.default) in helptext, f"{cmd} {a.option_strings[0]}: default {a.default} not shown"
    # each option's own entry appears once (its usage line aside)
    options = text.split("\n\n", 2)[-1]
    entries = re.findall(r"^  (-{1,2}[\w-]+)", options, flags=re.M)
    assert len(entries) == len(set(entries)), f"{cmd}: an option listed twice"


@pytest.mark.parametrize("cmd", ["analyze", "diff", "fit", "layers"])
def test_table_commands_take_every_format(cmd):
    fmt = next(a for a in subparsers()[cmd]._actions if "--format" in a.option_strings)
    assert set(fmt.choices) == {"text", "json", "csv", "markdown"}
