"""Faults in the simulated workload: switching their effects on and off, and the lines they add.

Each active fault has its own random stream, so injecting one never shifts the lines of the
healthy workload; what the fault does to transfers and tasks is read from the shared `Effects`.
"""

from __future__ import annotations

from fleetops.sim import faults as fx
from fleetops.sim.faults import UPLINK, Flaps
from fleetops.sim.workload_clock import WorkloadClock
from fleetops.sim.workload_model import DN_WARN, FIRST_BLOCK, ActiveFault, S


class FaultEffects(WorkloadClock):
    """The scheduled handlers of injected faults."""

    def _fault_on(self, active: ActiveFault) -> None:
        fault, eff, t = active.fault, self._effects, self._t
        active.on, active.since = True, t
        kind, target, intensity = fault.kind, fault.target, fault.intensity
        if kind == "slow_disk":
            eff.disk[target] = fx.slow_disk_factor(intensity)
            self._at(t + 1, self._slow_disk_tick, active)
        elif kind == "full_disk":
            eff.full[target] = fx.full_disk_task_failure(intensity)
            self._at(t + 1, self._full_disk_tick, active)
        elif kind == "bad_dimm":
            active.dimm = fx.pick_dimm(active.rng)
            self._at(t + 1, self._dimm_tick, active)
        elif kind == "flapping_link":
            end = None if fault.end is None else self._us(fault.end)
            eff.flaps[target] = flaps = Flaps(fault, self.seed, t, end)
            if first := flaps.first_from(t):
                self._at(first[0], self._flap, active)
        elif kind == "congested_link":
            eff.uplink[self._tor_rack[target.removesuffix(UPLINK)]] = fx.congestion_factor(
                intensity
            )
        else:
            eff.tor[self._tor_rack[target]] = fx.bad_tor_effect(intensity)

    def _fault_off(self, active: ActiveFault) -> None:
        eff, target = self._effects, active.fault.target
        active.on = False
        if active.fault.kind == "congested_link":
            eff.uplink.pop(self._tor_rack[target.removesuffix(UPLINK)], None)
        elif active.fault.kind == "bad_tor":
            eff.tor.pop(self._tor_rack[target], None)
        else:
            for table in (eff.disk, eff.full, eff.flaps):
                table.pop(target, None)

    def _slow_disk_tick(self, active: ActiveFault) -> None:
        """Slow writes and flushes every few seconds; now and then a failed read, a hung task."""
        if not active.on:
            return
        rng, t, host = active.rng, self._t, self._hosts[active.fault.target]
        cost = int(rng.uniform(300, 900) * fx.slow_disk_factor(active.fault.intensity))
        block_id = FIRST_BLOCK + rng.randrange(self._next_block - FIRST_BLOCK + 1)
        slow = fx.slow_write_message if rng.random() < 0.6 else fx.slow_flush_message
        self._dn(t, host, DN_WARN, slow(rng, cost, block_id))
        if rng.random() < 0.2:
            self._kernel(t + 1, host, fx.io_error_message(rng))
        if rng.random() < 0.02:
            self._kernel(t + 2, host, fx.hung_task_message(rng))
        self._after(rng.expovariate(active.fault.intensity / 8.0), self._slow_disk_tick, active)

    def _full_disk_tick(self, active: ActiveFault) -> None:
        if not active.on:
            return
        host = self._hosts[active.fault.target]
        self._dn(self._t, host, f"WARN {fx.VOLUME_CHECKER}", fx.volume_check_message(active.rng))
        self._after(active.rng.uniform(20, 60), self._full_disk_tick, active)

    def _dimm_tick(self, active: ActiveFault) -> None:
        """Bursts of corrected errors on one DIMM, rising from 2/min to 10/min over 30 minutes."""
        if not active.on:
            return
        rng, t, host = active.rng, self._t, self._hosts[active.fault.target]
        # A weak cell is read again and again: its corrected errors come in bursts on one page,
        # which sets a failing DIMM apart from the fleet's scattered single errors.
        page = rng.randrange(0x100000, 0x3FFFFF)
        for i in range(rng.choice((2, 2, 3, 4))):
            at = t + i * rng.randrange(2000, 40000)
            self._kernel(at, host, fx.edac_message(rng, active.dimm, page))
        if rng.random() < 0.15:
            self._kernel(t + 150, host, fx.MCE_MESSAGE)
        per_min = active.fault.intensity * (2 + 8 * min(1.0, (t - active.since) / (1800 * S)))
        self._after(rng.expovariate(per_min / 60), self._dimm_tick, active)

    def _flap(self, active: ActiveFault) -> None:
        flaps = self._effects.flaps.get(active.fault.target)
        if not active.on or flaps is None:
            return
        t, host = self._t, self._hosts[active.fault.target]
        interval = flaps.first_from(t)
        if interval is None or interval[0] != t:
            return
        down, up = fx.link_messages(host.gbps)
        self._kernel(t, host, down)
        self._kernel(interval[1], host, up)
        flaps.forget(t)
        if following := flaps.first_from(t + 1):
            self._at(following[0], self._flap, active)
