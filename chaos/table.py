"""The chaos run's verdict as a plain-text table: faults injected against invariants held."""

from __future__ import annotations

from chaos.scenario import ChaosReport


def _provider_matrix(report: ChaosReport) -> list[str]:
    """Providers by fault kinds, with each provider's calls and the share that failed."""
    kinds = sorted({k for faults in report.provider_faults.values() for k in faults})
    if not kinds:
        return []
    width = max(len(p) for p in report.provider_faults)
    header = f"{'provider':<{width}}  calls  " + "  ".join(kinds) + "  faulted"
    lines = [header, "-" * len(header)]
    for provider, faults in report.provider_faults.items():
        calls = report.calls.get(provider)
        total = sum(faults.values())
        cells = "  ".join(
            f"{faults[k]:>{len(k)}}" if k in faults else f"{'-':>{len(k)}}" for k in kinds
        )
        share = f"{total / calls:>6.0%}" if calls else f"{total:>6} "
        lines.append(
            f"{provider:<{width}}  {calls if calls is not None else '-':>5}  {cells}  {share}"
        )
    lines.append("")
    return lines


def render(report: ChaosReport) -> str:
    """Faults, then invariants with HELD/BROKEN and every violation found."""
    o = report.options
    lines = [
        f"fireline chaos run: seed {o.seed}, {o.incidents} incidents, "
        f"fault rate {o.fault_rate:.0%}, {report.seconds:.0f}s",
        "",
    ]
    lines += _provider_matrix(report)
    # Provider faults are in the matrix; the rest (kills, restarts, deliveries) listed here.
    others = {
        name: count
        for name, count in report.faults.items()
        if not any(name.startswith(f"{p} ") for p in report.provider_faults)
    }
    width = max([len(k) for k in others] + [len("fault injected")])
    lines.append(f"{'fault injected':<{width}}  count")
    lines.append(f"{'-' * width}  -----")
    lines += [f"{name:<{width}}  {count:>5}" for name, count in others.items()]
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
