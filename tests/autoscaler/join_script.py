"""Read a node's join script back: the k3s agent's labels, taints and kubelet arguments, as the agent
would receive them (the command line after `sh -s -`, split as the shell splits it)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class AgentFlags:
    labels: dict[str, str]
    taints: list[str]
    kubelet_args: list[str]


def agent_flags(user_data: str) -> AgentFlags:
    document = yaml.safe_load(user_data)
    [[shell, flag, command]] = document["runcmd"]
    assert (shell, flag) == ("sh", "-c")
    words = shlex.split(command.split("| ", 1)[1])
    args = words[words.index("-") + 1 :]
    assert args[0] == "agent"
    labels: dict[str, str] = {}
    taints: list[str] = []
    kubelet_args: list[str] = []
    for option, value in zip(args[1::2], args[2::2], strict=True):
        if option == "--node-label":
            key, _, label_value = value.partition("=")
            assert key not in labels, f"label {key} given twice"
            labels[key] = label_value
        elif option == "--node-taint":
            taints.append(value)
        elif option == "--kubelet-arg":
            kubelet_args.append(value)
        else:
            raise AssertionError(f"unexpected agent option {option}")
    return AgentFlags(labels, taints, kubelet_args)
