"""The chaos run's verdict as a plain-text table: faults injected against invariants held."""

from __future__ import annotations

from chaos.scenario import ChaosReport


def render(report: ChaosReport) -> str:
    """Faults, then invariants with HELD/BROKEN and every violation found."""
    o = report.options
    lines = [
        f"fireline chaos run: seed {o.seed}, {o.incidents} incidents, "
        f"fault rate {o.fault_rate:.0%}, {report.seconds:.0f}s",
        "",
    ]
    width = max([len(k) for k in report.faults] + [len("fault injected")])
    lines.append(f"{'fault injected':<{width}}  count")
    lines.append(f"{'-' * width}  -----")
    lines += [f"{name:<{width}}  {count:>5}" for name, count in report.faults.items()]
    if report.kill_phases:
        where = ", ".join(f"{p}: {n}" for p, n in report.kill_phases.items())
        lines.append(f"(SIGKILLs by phase: {where})")
    lines.append("")
    width = max(len(i.name) for i in report.invariants) if report.invariants else 10
    lines.append(f"{'invariant':<{width}}  checked  verdict")
    lines.append(f"{'-' * width}  -------  -------")
    for inv in report.invariants:
        verdict = "HELD" if inv.held else "BROKEN"
        lines.append(f"{inv.name:<{width}}  {inv.checked:>7}  {verdict}")
        lines += [f"    ! {problem}" for problem in inv.problems]
    lines.append("")
    lines.append("ALL INVARIANTS HELD" if report.held else "INVARIANTS BROKEN")
    return "\n".join(lines)
