"""A small built-in power-system example for the layered mechanism (used by ``stochmech lqg``)."""

from __future__ import annotations

from dataclasses import dataclass

from stochmech.lqg.agents import LQGAgents

__all__ = ["ExampleSystem", "power_system_example"]


@dataclass(frozen=True)
class ExampleSystem:
    """Agents with their names and kinds (``"generator"`` or ``"load"``)."""

    agents: LQGAgents
    names: tuple[str, ...]
    kinds: tuple[str, ...]


def power_system_example() -> ExampleSystem:
    """Three generators and two loads sharing a balance constraint at every step.

    States are deviations from the day-ahead schedule (generators: output; loads: indoor
    temperature). Each agent's control ``u_i`` is its real-time energy adjustment and
    ``sum_i u_i = 0``. Generators have little noise and differ in ramping cost ``r``; the wind farm
    and the loads carry most of the noise (variances ``sigma``). Illustrative numbers, per unit.

    Examples
    --------
    >>> ex = power_system_example()
    >>> ex.agents.n, ex.kinds.count("load")
    (5, 2)
    """
    names = ("gas", "hydro", "wind", "office", "cold-store")
    kinds = ("generator", "generator", "generator", "load", "load")
    agents = LQGAgents(
        a=[0.90, 0.85, 0.80, 0.95, 0.97],
        b=[1.00, 1.00, 1.00, -0.80, -0.60],
        q=[-1.00, -0.50, -0.30, -2.00, -3.00],
        r=[-0.50, -2.00, -4.00, -1.00, -1.50],
        sigma=[0.01, 0.01, 0.25, 0.10, 0.05],
        zeta=[0.10, 0.10, 0.50, 0.20, 0.10],
    )
    return ExampleSystem(agents=agents, names=names, kinds=kinds)
